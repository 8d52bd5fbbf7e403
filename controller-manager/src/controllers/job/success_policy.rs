//! `successPolicy` of Indexed Jobs: the Job succeeds early once any rule holds — all of its
//! `succeededIndexes` succeeded, at least `succeededCount` indexes succeeded, or (both given) at
//! least `succeededCount` of those indexes did.

use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1::SuccessPolicy;

use super::indexes;

/// The `SuccessCriteriaMet` message when a rule holds for `succeeded` (indexes below
/// `completions`), as upstream words it.
pub fn matched(
    policy: Option<&SuccessPolicy>,
    completions: i32,
    succeeded: &BTreeSet<i32>,
) -> Option<String> {
    let policy = policy?;
    if succeeded.is_empty() {
        return None;
    }
    policy.rules.iter().enumerate().find_map(|(i, rule)| {
        let holds = match (&rule.succeeded_indexes, rule.succeeded_count) {
            (Some(text), count) => {
                let required: BTreeSet<i32> = indexes::parse(Some(text))
                    .into_iter()
                    .filter(|ix| (0..completions).contains(ix))
                    .collect();
                let done = required.intersection(succeeded).count();
                !required.is_empty()
                    && match count {
                        Some(n) => done as i32 >= n,
                        None => done == required.len(),
                    }
            }
            (None, Some(n)) => succeeded.len() as i32 >= n,
            (None, None) => false,
        };
        holds.then(|| format!("Matched rules at index {i}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn any_rule_holding_meets_the_policy() {
        let policy: SuccessPolicy = serde_json::from_value(json!({ "rules": [
            { "succeededIndexes": "0-2" },
            { "succeededIndexes": "5-9", "succeededCount": 2 },
            { "succeededCount": 4 },
        ]}))
        .unwrap();
        let done = |v: &[i32]| v.iter().copied().collect::<BTreeSet<i32>>();
        let m = |v: &[i32]| matched(Some(&policy), 10, &done(v));
        assert_eq!(m(&[0, 1, 2]).as_deref(), Some("Matched rules at index 0"));
        assert_eq!(m(&[0, 1]), None);
        assert_eq!(m(&[1, 6, 9]).as_deref(), Some("Matched rules at index 1"));
        assert_eq!(
            m(&[1, 3, 4, 6]).as_deref(),
            Some("Matched rules at index 2")
        );
        assert_eq!(matched(None, 10, &done(&[0, 1, 2])), None);
        // Indexes at or beyond completions are dropped from a rule, as upstream parses them.
        let tail: SuccessPolicy =
            serde_json::from_value(json!({ "rules": [{ "succeededIndexes": "4-9" }] })).unwrap();
        assert_eq!(
            matched(Some(&tail), 6, &done(&[4, 5])).as_deref(),
            Some("Matched rules at index 0")
        );
        assert_eq!(matched(Some(&tail), 6, &done(&[4])), None);
    }
}
