//! Strategic merge patch (`application/strategic-merge-patch+json`), as applied server-side.
//!
//! Semantics follow upstream's `strategicpatch.StrategicMergeMapPatch`: maps merge recursively
//! and `null` deletes; lists whose property carries `x-kubernetes-patch-strategy: merge` are
//! merged (objects by their merge key, scalars as a union), other lists are replaced. The
//! directives kubectl sends are honoured: `$patch` (replace/delete on maps and list items),
//! `$retainKeys`, `$setElementOrder/<field>` and `$deleteFromPrimitiveList/<field>`. Paths
//! the schema does not describe (map values, unknown fields) merge like a JSON merge patch.
//!
//! Where upstream copies raw patch content into the result (new fields, new list items), the
//! content is merged into an empty value instead, so no directive or `null` leaks into the
//! stored object; upstream drops those when it decodes into Go structs, so the outcome is the
//! same.

use serde_json::{Map, Value};

use super::error::PatchError;
use super::go_format::{go_type, go_value, json_kind};
use crate::schema::patch_meta::PatchMeta;
use crate::schema::{definitions, Definitions};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// Resolved schema of the value being merged; `None` where the schema says nothing.
type Schema<'a> = Option<&'a Value>;

/// Applies a strategic merge `patch` to `original`, an object of the type whose schema
/// definition is `definition` (an unknown definition merges everything like a merge patch).
pub fn apply(definition: &str, original: &Value, patch: Value) -> Result<Value, PatchError> {
    let patch = match patch {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => {
            return Err(PatchError::MalformedPatch(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind(&other)
            )))
        }
    };
    let original = original.as_object().cloned().unwrap_or_default();
    let defs = definitions();
    let merger = Merger { defs };
    let merged = merger.merge_map(original, patch, defs.get(definition))?;
    Ok(Value::Object(merged))
}

struct Merger<'a> {
    defs: &'a Definitions,
}

/// What the items of a list are, as far as merging cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    Map,
    Scalar,
}

impl<'a> Merger<'a> {
    /// Patch metadata and resolved schema of `key` inside an object of schema `schema`.
    fn field(&self, schema: Schema<'a>, key: &str) -> (PatchMeta<'a>, Schema<'a>) {
        let Some(schema) = schema else {
            return (PatchMeta::default(), None);
        };
        if let Some(prop) = schema.get("properties").and_then(|p| p.get(key)) {
            return (PatchMeta::of(prop), Some(self.defs.resolve(prop)));
        }
        match schema.get("additionalProperties") {
            Some(ap) if ap.is_object() => (PatchMeta::default(), Some(self.defs.resolve(ap))),
            _ => (PatchMeta::default(), None),
        }
    }

    fn items(&self, schema: Schema<'a>) -> Schema<'a> {
        schema
            .and_then(|s| s.get("items"))
            .map(|i| self.defs.resolve(i))
    }

    fn merge_map(
        &self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
        schema: Schema<'a>,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(directive) = patch.get(DIRECTIVE) {
            return match directive.as_str() {
                Some("replace") => {
                    patch.remove(DIRECTIVE);
                    self.merge_map(Map::new(), patch, schema)
                }
                Some("delete") => Ok(Map::new()),
                _ => Err(bad_patch_type(directive, &patch)),
            };
        }
        apply_retain_keys(&mut original, &mut patch)?;
        self.merge_element_orders(&mut original, &mut patch, schema)?;

        let mut deletions = Vec::new();
        for (key, value) in patch {
            if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
                let field = extract_key(&key, DELETE_FROM_PRIMITIVE_LIST)
                    .ok_or(PatchError::BadPrimitiveListFormat)?;
                deletions.push((field.to_string(), value));
                continue;
            }
            if value.is_null() {
                original.remove(&key);
                continue;
            }
            let (meta, field_schema) = self.field(schema, &key);
            let merged = match original.get_mut(&key) {
                Some(existing) => {
                    let existing = std::mem::take(existing);
                    self.merge_value(existing, value, meta, field_schema)?
                }
                None => self.fresh_field(value, field_schema)?,
            };
            original.insert(key, merged);
        }
        for (field, value) in deletions {
            let Value::Array(to_delete) = value else {
                return Err(PatchError::BadPrimitiveListFormat);
            };
            if let Some(Value::Array(list)) = original.get_mut(&field) {
                list.retain(|item| !to_delete.contains(item));
            }
        }
        Ok(original)
    }

    /// Merges a patch value into an existing value of the same field.
    fn merge_value(
        &self,
        existing: Value,
        patch: Value,
        meta: PatchMeta<'a>,
        schema: Schema<'a>,
    ) -> Result<Value, PatchError> {
        match (existing, patch) {
            (Value::Object(original), Value::Object(patch)) => {
                let merged = if meta.replace {
                    self.merge_map(Map::new(), patch, schema)?
                } else {
                    self.merge_map(original, patch, schema)?
                };
                Ok(Value::Object(merged))
            }
            (Value::Array(original), Value::Array(patch)) if meta.merge => Ok(Value::Array(
                self.merge_list(original, patch, self.items(schema), meta.merge_key)?,
            )),
            (_, patch) => self.fresh_field(patch, schema),
        }
    }

    /// A patch value for a field the original lacks (or replaces): its directives are
    /// processed against an empty value.
    fn fresh_field(&self, value: Value, schema: Schema<'a>) -> Result<Value, PatchError> {
        match value {
            Value::Object(map) => Ok(Value::Object(self.merge_map(Map::new(), map, schema)?)),
            Value::Array(items) => {
                let item_schema = self.items(schema);
                items
                    .into_iter()
                    .map(|item| self.fresh_field(item, item_schema))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array)
            }
            scalar => Ok(scalar),
        }
    }

    fn merge_list(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        item_schema: Schema<'a>,
        merge_key: Option<&str>,
    ) -> Result<Vec<Value>, PatchError> {
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        match item_kind(&original, &patch)? {
            ItemKind::Scalar => {
                let mut merged = original.clone();
                for item in &patch {
                    if !merged.contains(item) {
                        merged.push(item.clone());
                    }
                }
                let (patch_items, server_only) = partition(merged, &patch, None)?;
                normalize_element_order(patch_items, server_only, &patch, &original, None)
            }
            ItemKind::Map => {
                let Some(key) = merge_key else {
                    return Err(PatchError::Unmergeable(
                        "cannot merge lists without merge key for type struct".into(),
                    ));
                };
                let (original, patch) =
                    self.split_special_items(original, patch, key, item_schema)?;
                let merged = self.merge_items(original.clone(), &patch, key, item_schema)?;
                let (patch_items, server_only) = partition(merged, &patch, Some(key))?;
                normalize_element_order(patch_items, server_only, &patch, &original, Some(key))
            }
        }
    }

    /// Applies `$patch: delete` items to `original` and handles `$patch: replace`, returning
    /// the original and the patch items left to merge.
    fn split_special_items(
        &self,
        mut original: Vec<Value>,
        patch: Vec<Value>,
        key: &str,
        item_schema: Schema<'a>,
    ) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
        let mut plain = Vec::with_capacity(patch.len());
        let mut replace = false;
        for item in patch {
            let directive = item.get(DIRECTIVE);
            match directive.map(Value::as_str) {
                None => plain.push(item),
                Some(Some("delete")) => {
                    let Some(value) = item.get(key) else {
                        return Err(no_merge_key(&item, key));
                    };
                    original.retain(|o| o.get(key) != Some(value));
                }
                Some(Some("replace")) => replace = true,
                Some(Some("merge")) => {
                    return Err(PatchError::Unmergeable(
                        "merging lists cannot yet be specified in the patch".into(),
                    ))
                }
                Some(_) => {
                    let directive = directive.cloned().unwrap_or_default();
                    let map = item.as_object().cloned().unwrap_or_default();
                    return Err(bad_patch_type(&directive, &map));
                }
            }
        }
        if replace {
            let replaced = plain
                .into_iter()
                .map(|item| self.fresh_field(item, item_schema))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok((replaced, Vec::new()));
        }
        Ok((original, plain))
    }

    /// Merges each patch item into the original item with the same merge key value, or
    /// appends it.
    fn merge_items(
        &self,
        mut original: Vec<Value>,
        patch: &[Value],
        key: &str,
        item_schema: Schema<'a>,
    ) -> Result<Vec<Value>, PatchError> {
        for item in patch {
            let Some(value) = item.get(key) else {
                return Err(no_merge_key(item, key));
            };
            let patch_map = item.as_object().cloned().unwrap_or_default();
            match original.iter().position(|o| o.get(key) == Some(value)) {
                Some(i) => {
                    let existing = match std::mem::take(&mut original[i]) {
                        Value::Object(map) => map,
                        _ => Map::new(),
                    };
                    original[i] =
                        Value::Object(self.merge_map(existing, patch_map, item_schema)?);
                }
                None => original.push(self.fresh_field(item.clone(), item_schema)?),
            }
        }
        Ok(original)
    }

    /// Processes every `$setElementOrder/<field>` directive: merges the field's list and then
    /// orders it as the directive says, keeping server-only items near their old neighbours.
    fn merge_element_orders(
        &self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
        schema: Schema<'a>,
    ) -> Result<(), PatchError> {
        let keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
            .cloned()
            .collect();
        for key in keys {
            let Some(order) = patch.remove(&key) else {
                continue;
            };
            let Value::Array(order) = order else {
                return Err(bad_arg_type("[]interface {}", &order));
            };
            let field = extract_key(&key, SET_ELEMENT_ORDER)
                .ok_or(PatchError::BadSetElementOrderFormat)?
                .to_string();
            let original_list = list_field(original, &field)?;
            let patch_list = list_field(patch, &field)?;
            let (meta, field_schema) = self.field(schema, &field);
            let merge_key = meta.merge_key;
            validate_with_order(patch_list.as_deref().unwrap_or(&[]), &order, merge_key)?;

            let server_order = original_list.clone().unwrap_or_default();
            let merged = match (original_list, patch_list) {
                (Some(original_list), None) => original_list,
                (None, Some(patch_list)) => {
                    self.fresh_items(patch_list, self.items(field_schema))?
                }
                (Some(original_list), Some(patch_list)) => {
                    if meta.merge {
                        self.merge_list(
                            original_list,
                            patch_list,
                            self.items(field_schema),
                            merge_key,
                        )?
                    } else {
                        self.fresh_items(patch_list, self.items(field_schema))?
                    }
                }
                (None, None) => continue,
            };
            let maps = merged.iter().any(Value::is_object);
            let ordered = if maps && merge_key.is_none() {
                merged
            } else {
                let (patch_items, server_only) = partition(merged, &order, merge_key)?;
                normalize_element_order(patch_items, server_only, &order, &server_order, merge_key)?
            };
            original.insert(field.clone(), Value::Array(ordered));
            patch.remove(&field);
        }
        Ok(())
    }

    fn fresh_items(&self, items: Vec<Value>, schema: Schema<'a>) -> Result<Vec<Value>, PatchError> {
        items
            .into_iter()
            .map(|item| self.fresh_field(item, schema))
            .collect()
    }
}

/// Clears the keys of `original` absent from a `$retainKeys` directive, after checking that
/// the patch only sets retained keys.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retained) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retained) = retained else {
        return Err(PatchError::BadRetainKeysFormat);
    };
    let is_retained = |key: &str| retained.iter().any(|v| v.as_str() == Some(key));
    for (key, value) in patch.iter() {
        if value.is_null()
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || key.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !is_retained(key) {
            return Err(PatchError::BadRetainKeysFormat);
        }
    }
    original.retain(|key, _| is_retained(key));
    Ok(())
}

/// The field name after `<prefix>/`, or `None` when the key is not of that form.
fn extract_key<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    match key.split_once('/') {
        Some((head, field)) if head == prefix => Some(field),
        _ => None,
    }
}

/// The list held by `field`, if any; `null` counts as absent.
fn list_field(map: &Map<String, Value>, field: &str) -> Result<Option<Vec<Value>>, PatchError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items.clone())),
        Some(other) => Err(bad_arg_type("[]interface {}", other)),
    }
}

/// Classifies the items of two lists that are about to be merged; they must all be maps or
/// all be scalars of one type.
fn item_kind(original: &[Value], patch: &[Value]) -> Result<ItemKind, PatchError> {
    let mut first: Option<&Value> = None;
    for item in original.iter().chain(patch) {
        match first {
            None => {
                if item.is_array() {
                    return Err(PatchError::ListOfLists);
                }
                first = Some(item);
            }
            Some(prev) if go_type(prev) != go_type(item) => {
                return Err(PatchError::Unmergeable(format!(
                    "list element types are not identical: [{} {}]",
                    go_value(&Value::Array(original.to_vec())),
                    go_value(&Value::Array(patch.to_vec()))
                )));
            }
            Some(_) => {}
        }
    }
    Ok(match first {
        Some(Value::Object(_)) => ItemKind::Map,
        _ => ItemKind::Scalar,
    })
}

/// Position of `item` in `list`, comparing merge key values for maps and whole values for
/// scalars.
fn index_of(list: &[Value], item: &Value, merge_key: Option<&str>) -> Option<usize> {
    match merge_key {
        Some(key) => {
            let wanted = item.get(key);
            list.iter().position(|v| v.get(key) == wanted)
        }
        None => list.iter().position(|v| v == item),
    }
}

/// Splits `merged` into the items present in `by` and the server-only rest, keeping order.
fn partition(
    merged: Vec<Value>,
    by: &[Value],
    merge_key: Option<&str>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut present = Vec::new();
    let mut server_only = Vec::new();
    for item in merged {
        if let Some(key) = merge_key {
            if !item.is_object() {
                return Err(bad_arg_type("map[string]interface {}", &item));
            }
            if item.get(key).is_none() {
                return Err(no_merge_key(&item, key));
            }
        }
        if index_of(by, &item, merge_key).is_some() {
            present.push(item);
        } else {
            server_only.push(item);
        }
    }
    Ok((present, server_only))
}

/// Sorts the patch items by `patch_order` and the server-only items by `server_order`, then
/// interleaves them so that server-only items keep their place relative to the live list.
fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: Option<&str>,
) -> Result<Vec<Value>, PatchError> {
    let patch_items = sort_by_order(patch_items, patch_order, merge_key)?;
    let server_only = sort_by_order(server_only, server_order, merge_key)?;
    Ok(merge_sorted(
        server_only,
        patch_items,
        server_order,
        merge_key,
    ))
}

fn sort_by_order(
    items: Vec<Value>,
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<Vec<Value>, PatchError> {
    let (mut keep, deleted): (Vec<Value>, Vec<Value>) = match merge_key {
        Some(key) => {
            for item in items.iter().chain(order) {
                if item.get(key).is_none() {
                    return Err(no_merge_key(item, key));
                }
            }
            items
                .into_iter()
                .partition(|item| item.get(DIRECTIVE).and_then(Value::as_str) != Some("delete"))
        }
        None => (items, Vec::new()),
    };
    keep.sort_by_key(|item| index_of(order, item, merge_key).unwrap_or(usize::MAX));
    keep.extend(deleted);
    Ok(keep)
}

/// Interleaves two sorted lists: an item of `left` goes first only when both items are in
/// `server_order` and it comes earlier there.
fn merge_sorted(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: Option<&str>,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (index_of(server_order, l, merge_key), index_of(server_order, r, merge_key)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

/// Checks that the non-directive patch items appear in the same relative order as in the
/// `$setElementOrder` list.
fn validate_with_order(
    patch_list: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<(), PatchError> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let mut items = Vec::with_capacity(patch_list.len());
    for item in patch_list {
        if merge_key.is_some() && !item.is_object() {
            return Err(bad_arg_type("map[string]interface {}", item));
        }
        if item.get(DIRECTIVE).and_then(Value::as_str) != Some("delete") {
            items.push(item);
        }
    }
    let (mut pi, mut si) = (0, 0);
    while pi < items.len() && si < order.len() {
        if items[pi].get(DIRECTIVE).is_some() {
            pi += 1;
            continue;
        }
        if merge_key_equal(items[pi], &order[si], merge_key)? {
            pi += 1;
        }
        si += 1;
    }
    if pi < items.len() && si >= order.len() {
        return Err(PatchError::Unmergeable(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
            go_value(&Value::Array(patch_list.to_vec())),
            go_value(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

fn merge_key_equal(
    left: &Value,
    right: &Value,
    merge_key: Option<&str>,
) -> Result<bool, PatchError> {
    let Some(key) = merge_key else {
        return Ok(left == right);
    };
    for side in [left, right] {
        if !side.is_object() {
            return Err(bad_arg_type("map[string]interface {}", side));
        }
        if side.get(key).is_none() {
            return Err(no_merge_key(side, key));
        }
    }
    Ok(left.get(key) == right.get(key))
}

fn no_merge_key(item: &Value, key: &str) -> PatchError {
    PatchError::Unmergeable(format!(
        "map: {} does not contain declared merge key: {key}",
        go_value(item)
    ))
}

fn bad_arg_type(expected: &str, actual: &Value) -> PatchError {
    PatchError::Unmergeable(format!(
        "expected a {expected}, but received a {}",
        go_type(actual)
    ))
}

fn bad_patch_type(directive: &Value, map: &Map<String, Value>) -> PatchError {
    PatchError::Unmergeable(format!(
        "unknown patch type: {} in map: {}",
        go_value(directive),
        go_value(&Value::Object(map.clone()))
    ))
}
