//! [`Caller`]: who made a routed `call`, as the serving connection's `server_request` names it
//! (`caller: {app_id, sub?, key?}`).

use alloc::borrow::ToOwned;
use alloc::string::String;
use serde_json::{Map, Value};

/// Who made a routed call: the calling connection's `app_id`, and what its credential names. Never a secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Caller {
    /// The calling connection's `app_id`.
    pub app_id: String,
    /// The `sub` claim of the token it authenticated with, if it did with a token that has one.
    pub sub: Option<String>,
    /// The name of the API key it authenticated with (`api-key:<index>`), if it did with an API key.
    pub key: Option<String>,
}

impl Caller {
    /// A caller with these parts.
    pub fn new(app_id: impl Into<String>, sub: Option<String>, key: Option<String>) -> Caller {
        Caller {
            app_id: app_id.into(),
            sub,
            key,
        }
    }

    /// The best name for logs and audit lines: the token's `sub`, else the API key's name, else the `app_id`.
    pub fn name(&self) -> &str {
        self.sub
            .as_deref()
            .or(self.key.as_deref())
            .unwrap_or(&self.app_id)
    }

    /// The wire form: `{"app_id", "sub"?, "key"?}` (absent parts are left out).
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("app_id".to_owned(), Value::String(self.app_id.clone()));
        if let Some(sub) = &self.sub {
            m.insert("sub".to_owned(), Value::String(sub.clone()));
        }
        if let Some(key) = &self.key {
            m.insert("key".to_owned(), Value::String(key.clone()));
        }
        Value::Object(m)
    }

    /// Reads the wire form; a bare string (what servers before the object form sent) is an `app_id`. Anything
    /// else, or an object without a string `app_id`, is `None`; parts that are not strings are ignored.
    pub fn from_value(value: &Value) -> Option<Caller> {
        match value {
            Value::String(app_id) => Some(Caller::new(app_id.clone(), None, None)),
            Value::Object(m) => {
                let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
                Some(Caller::new(text("app_id")?, text("sub"), text("key")))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_form_round_trips_and_names_the_best_part() {
        let full = Caller::new("a1", Some("alice".into()), None);
        assert_eq!(full.to_value(), json!({"app_id": "a1", "sub": "alice"}));
        assert_eq!(Caller::from_value(&full.to_value()), Some(full.clone()));
        assert_eq!(full.name(), "alice");
        let keyed = Caller::new("a2", None, Some("api-key:0".into()));
        assert_eq!(keyed.name(), "api-key:0");
        assert_eq!(Caller::new("a3", None, None).name(), "a3");
        assert_eq!(
            Caller::from_value(&json!("a4")),
            Some(Caller::new("a4", None, None))
        );
        assert_eq!(Caller::from_value(&json!({"sub": "x"})), None);
        assert_eq!(Caller::from_value(&json!(3)), None);
        assert_eq!(
            Caller::from_value(&json!({"app_id": "a5", "sub": 7})),
            Some(Caller::new("a5", None, None))
        );
    }
}
