//! Field paths printed the way upstream's `field.Path` prints them: `spec.containers[0].image`,
//! `data[key]`.

/// A dotted path to a field of the object being validated.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Path(String);

impl Path {
    /// A path starting at a top-level field; `""` is the whole object.
    pub fn new(root: &str) -> Path {
        Path(root.to_string())
    }

    /// The named field inside this one.
    pub fn child(&self, name: &str) -> Path {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{}", self.0, name))
        }
    }

    /// The `i`th item of this list.
    pub fn index(&self, i: usize) -> Path {
        Path(format!("{}[{}]", self.0, i))
    }

    /// The entry under `key` of this map.
    pub fn key(&self, key: &str) -> Path {
        Path(format!("{}[{}]", self.0, key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Path;

    #[test]
    fn prints_like_upstream() {
        let p = Path::new("spec")
            .child("containers")
            .index(0)
            .child("image");
        assert_eq!(p.as_str(), "spec.containers[0].image");
        assert_eq!(Path::new("data").key("a.b").as_str(), "data[a.b]");
        assert_eq!(Path::new("").child("x").as_str(), "x");
    }
}
