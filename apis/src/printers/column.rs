//! The column definition type and the columns nearly every table shares.

use serde_json::{json, Value};

/// One column of a `meta.k8s.io/v1` Table, as `columnDefinitions[]` carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Header text; kubectl upper-cases it.
    pub name: &'static str,
    /// OpenAPI type of the cells: "string", "integer", "number", "boolean" or "date".
    pub type_: &'static str,
    /// "name" marks the column holding the object's name; otherwise empty.
    pub format: &'static str,
    /// Human-readable meaning of the column.
    pub description: &'static str,
    /// 0 for default output, 1 for columns shown only with `-o wide`.
    pub priority: i32,
}

impl Column {
    /// The JSON form of the definition; every field is always present, as upstream sends it.
    pub fn definition(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// Builds a column with the given header, type and priority.
pub(super) const fn col(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
    priority: i32,
) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority,
    }
}

/// The object-name column that leads almost every table.
pub(super) const NAME: Column = Column {
    name: "Name",
    type_: "string",
    format: "name",
    description: "Name of the object, unique within its namespace (or cluster, if cluster-scoped).",
    priority: 0,
};

/// The age column, derived from metadata.creationTimestamp.
pub(super) const AGE: Column = col(
    "Age",
    "string",
    "Time since the object was created (metadata.creationTimestamp).",
    0,
);

/// Wide column listing the names of the pod template's containers.
pub(super) const CONTAINERS: Column = col(
    "Containers",
    "string",
    "Names of the containers in the pod template.",
    1,
);

/// Wide column listing the images of the pod template's containers.
pub(super) const IMAGES: Column = col(
    "Images",
    "string",
    "Images used by the containers in the pod template.",
    1,
);

/// The READY column of a deployment or stateful set (see `fields::ready_of_desired`).
pub(super) const READY_OF_DESIRED: Column = col(
    "Ready",
    "string",
    "Ready replicas out of desired replicas.",
    0,
);

/// Wide column showing the label selector of the pods an object manages or routes to.
pub(super) const fn selector(description: &'static str) -> Column {
    col("Selector", "string", description, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definition_has_every_field() {
        let d = NAME.definition();
        assert_eq!(d["name"], "Name");
        assert_eq!(d["type"], "string");
        assert_eq!(d["format"], "name");
        assert_eq!(d["priority"], 0);
        assert!(d["description"].as_str().is_some_and(|s| !s.is_empty()));
        assert_eq!(CONTAINERS.definition()["format"], "");
        assert_eq!(CONTAINERS.definition()["priority"], 1);
    }
}
