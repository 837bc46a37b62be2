export class CovenClient {}
