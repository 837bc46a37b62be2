//! One decompressed Gateway message: the envelope decode, then every decision the dispatch
//! filter can take on it (typed for every kind, raw, drop) and the op-specific decoders.
//!
//! Invariants beyond "no panic": a `Raw` dispatch's `d` is valid JSON; `Drop` never yields an
//! event; a typed decode yields the kind it was asked for.
#![no_main]

use gateway_proto::codec::{
    decode_dispatch, decode_frame, decode_hello, decode_invalid_session, decode_ready_session,
};
use gateway_proto::{Decision, DispatchEvent, EventFilter, EventKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = decode_frame(data) else {
        return;
    };
    let _ = decode_hello(frame.data);
    let _ = decode_invalid_session(frame.data);
    let _ = decode_ready_session(frame.data);
    let name = frame.name.as_deref().unwrap_or("");
    let _ = EventFilter::default().decide(name);

    // The application may ask for any kind under any name: every decoder must hold up.
    for kind in EventKind::ALL {
        if let Ok(Some(event)) = decode_dispatch(name, frame.data, Decision::Typed(kind)) {
            assert_eq!(event.name(), kind.name(), "typed decode changed the kind");
        }
    }
    match decode_dispatch(name, frame.data, Decision::Raw) {
        Ok(Some(DispatchEvent::Raw(raw))) => {
            assert_eq!(raw.name, name);
            serde_json::from_str::<serde_json::Value>(raw.data.get())
                .expect("raw d handed out is valid JSON");
        }
        Ok(other) => panic!("raw decision gave {other:?}"),
        Err(_) => {}
    }
    assert!(matches!(
        decode_dispatch(name, frame.data, Decision::Drop),
        Ok(None)
    ));
});
