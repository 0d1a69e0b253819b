//! Ordered JSON text for the fakes' frames. serde_json's map sorts keys (this crate has no `preserve_order`),
//! while the venues' key order is part of what the fakes reproduce.
//!
//! Owns no protocol: the venues choose keys, order and types.

use std::fmt::{Display, Write};

/// One JSON object, written field by field in wire order.
pub(crate) struct Obj(String);

impl Obj {
    /// An empty object, ready for fields.
    pub(crate) fn new() -> Obj {
        Obj(String::from("{"))
    }

    /// A string field, escaped.
    pub(crate) fn str(self, key: &str, value: &str) -> Obj {
        self.json(key, quote(value))
    }

    /// A field whose value is already JSON text: a number, a bool, `null`, a nested object or array.
    pub(crate) fn json(mut self, key: &str, value: impl Display) -> Obj {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        // Formatting into a String cannot fail.
        let _ = write!(self.0, "{}:{value}", quote(key));
        self
    }

    /// Adds `fields` only when `cond` holds: the keys one market has and its sibling lacks.
    pub(crate) fn when(self, cond: bool, fields: impl FnOnce(Obj) -> Obj) -> Obj {
        if cond { fields(self) } else { self }
    }

    /// Closes the object and returns its text.
    pub(crate) fn end(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// A JSON array of items that are already JSON text.
pub(crate) fn array(items: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(","))
}

/// A JSON string literal, escaped: client-supplied text echoed into replies must stay valid JSON.
pub(crate) fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}
