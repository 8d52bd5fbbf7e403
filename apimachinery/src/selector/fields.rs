//! Field selectors: `field=value`, `field==value`, `field!=value`, joined by commas, with
//! upstream's backslash escaping of `,`, `=` and `!` inside values.

use std::collections::BTreeMap;

use super::SelectorError;

/// One term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub field: String,
    pub value: String,
    pub equals: bool,
}

/// A parsed field selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    pub terms: Vec<Term>,
}

impl FieldSelector {
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether the object's selectable fields satisfy every term (a field it lacks is "").
    pub fn matches<K: AsRef<str> + Ord>(&self, fields: &BTreeMap<K, String>) -> bool {
        self.terms.iter().all(|t| {
            let actual = fields
                .iter()
                .find(|(k, _)| k.as_ref() == t.field)
                .map_or("", |(_, v)| v.as_str());
            (actual == t.value) == t.equals
        })
    }

    /// The value a term requires with `=`, if any (to narrow a list to a namespace or name).
    pub fn required(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.equals && t.field == field)
            .map(|t| t.value.as_str())
    }

    pub fn parse(input: &str) -> Result<FieldSelector, SelectorError> {
        let mut terms = Vec::new();
        for part in split_unescaped(input, ',') {
            if part.trim().is_empty() {
                continue;
            }
            let (field, value, equals) = if let Some((f, v)) = split_op(&part, "!=") {
                (f, v, false)
            } else if let Some((f, v)) = split_op(&part, "==") {
                (f, v, true)
            } else if let Some((f, v)) = split_op(&part, "=") {
                (f, v, true)
            } else {
                return Err(SelectorError(format!(
                    "invalid selector: '{input}'; can't understand '{part}'"
                )));
            };
            terms.push(Term {
                field: field.trim().to_string(),
                value: unescape(value.trim()),
                equals,
            });
        }
        Ok(FieldSelector { terms })
    }
}

fn split_unescaped(input: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in input.chars() {
        if escaped {
            current.push('\\');
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    parts
}

/// Splits at the first unescaped occurrence of `op`.
fn split_op<'a>(part: &'a str, op: &str) -> Option<(&'a str, &'a str)> {
    let bytes = part.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if part[i..].starts_with(op) {
            return Some((&part[..i], &part[i + op.len()..]));
        }
        i += 1;
    }
    None
}

fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_terms_and_matches() {
        let s = FieldSelector::parse("spec.nodeName=,status.phase!=Failed,metadata.name==a\\,b")
            .unwrap();
        assert_eq!(s.terms.len(), 3);
        assert_eq!(s.terms[2].value, "a,b");
        let mut f = BTreeMap::new();
        f.insert("spec.nodeName", String::new());
        f.insert("status.phase", "Running".to_string());
        f.insert("metadata.name", "a,b".to_string());
        assert!(s.matches(&f));
        f.insert("status.phase", "Failed".to_string());
        assert!(!s.matches(&f));
        assert_eq!(s.required("metadata.name"), Some("a,b"));
    }

    #[test]
    fn rejects_terms_without_operator() {
        assert!(FieldSelector::parse("spec.nodeName").is_err());
    }
}
