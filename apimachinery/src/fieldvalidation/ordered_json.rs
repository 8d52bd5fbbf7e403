//! A JSON tree that keeps object members in document order, duplicates included.
//!
//! Upstream's strict decoder reports unknown and duplicate fields in the order it meets them;
//! `serde_json::Value` can neither keep duplicates nor (without `preserve_order`) the order.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A decoded JSON value whose objects keep every member in document order.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
    /// A string, number, boolean or null.
    Scalar(Value),
}

impl Node {
    /// Parses raw JSON bytes.
    pub fn parse(raw: &[u8]) -> Result<Node, serde_json::Error> {
        serde_json::from_slice(raw)
    }

    /// Converts an already decoded value (which cannot hold duplicates).
    pub fn from_value(value: &Value) -> Node {
        match value {
            Value::Object(map) => Node::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Node::from_value(v)))
                    .collect(),
            ),
            Value::Array(items) => Node::Array(items.iter().map(Node::from_value).collect()),
            scalar => Node::Scalar(scalar.clone()),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Scalar(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Scalar(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Scalar(Value::from(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Scalar(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Scalar(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut members = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Node>()? {
            members.push((key, value));
        }
        Ok(Node::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_order_and_duplicates() {
        let node = Node::parse(br#"{"b": 1, "a": [true, null], "b": "x"}"#).unwrap();
        assert_eq!(
            node,
            Node::Object(vec![
                ("b".into(), Node::Scalar(json!(1))),
                (
                    "a".into(),
                    Node::Array(vec![Node::Scalar(json!(true)), Node::Scalar(Value::Null)])
                ),
                ("b".into(), Node::Scalar(json!("x"))),
            ])
        );
    }

    #[test]
    fn rejects_invalid_json() {
        assert!(Node::parse(b"{\"a\": }").is_err());
    }
}
