//! Discord's JSON error bodies (`developers/reference.mdx` "Error Messages" and
//! `opcodes-and-status-codes.mdx` "JSON Error Codes").

use serde_json::{Map, Value, json};

/// `{"message", "code"}`, the plain error shape.
pub(crate) fn plain(message: &str, code: u32) -> Value {
    json!({"message": message, "code": code})
}

/// Collects field errors into Discord's nested `errors` object: for each field,
/// `{"_errors": [{"code", "message"}]}` (reference.mdx "Example JSON Error Response").
#[derive(Debug, Default)]
pub(crate) struct FormErrors {
    fields: Map<String, Value>,
}

impl FormErrors {
    pub(crate) fn add(&mut self, field: &str, code: &str, message: &str) {
        let entry = self
            .fields
            .entry(field.to_owned())
            .or_insert_with(|| json!({"_errors": []}));
        if let Some(list) = entry.get_mut("_errors").and_then(Value::as_array_mut) {
            list.push(json!({"code": code, "message": message}));
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The 400 body: code 50035 "Invalid Form Body".
    pub(crate) fn into_body(self) -> Value {
        json!({"code": 50035, "errors": Value::Object(self.fields), "message": "Invalid Form Body"})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_shape_matches_discord() {
        let mut e = FormErrors::default();
        e.add(
            "name",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 100 in length.",
        );
        assert_eq!(
            e.into_body(),
            json!({"code": 50035, "errors": {"name": {"_errors": [
                {"code": "BASE_TYPE_BAD_LENGTH", "message": "Must be between 1 and 100 in length."}
            ]}}, "message": "Invalid Form Body"})
        );
    }
}
