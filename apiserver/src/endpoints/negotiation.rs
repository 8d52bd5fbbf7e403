//! Content negotiation: which representation a client asked for in `Accept` (a plain object,
//! a `meta.k8s.io/v1 Table`, or `PartialObjectMetadata`) and how its body is encoded.

/// What the response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Object,
    Table,
    PartialMetadata,
    PartialMetadataList,
}

/// The response format: the representation and the wire encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub output: Output,
    pub protobuf: bool,
}

/// One media range of an Accept header.
#[derive(Debug)]
struct MediaRange<'a> {
    mime: &'a str,
    params: Vec<(&'a str, &'a str)>,
}

fn ranges(accept: &str) -> Vec<MediaRange<'_>> {
    accept
        .split(',')
        .map(|r| {
            let mut parts = r.split(';').map(str::trim);
            let mime = parts.next().unwrap_or("");
            let params = parts
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect();
            MediaRange { mime, params }
        })
        .collect()
}

/// Chooses the response format from an Accept header, or `Err` with the list of what can be
/// served when nothing acceptable is offered.
pub fn negotiate(accept: Option<&str>, list: bool) -> Result<Format, String> {
    let accept = accept.unwrap_or("application/json");
    if accept.trim().is_empty() {
        return Ok(Format {
            output: Output::Object,
            protobuf: false,
        });
    }
    for r in ranges(accept) {
        let param = |k: &str| r.params.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
        let json = matches!(
            r.mime,
            "application/json" | "application/*" | "*/*" | "application/yaml"
        );
        let protobuf = r.mime == "application/vnd.kubernetes.protobuf";
        if !json && !protobuf {
            continue;
        }
        match param("as") {
            None => {
                return Ok(Format {
                    output: Output::Object,
                    protobuf,
                })
            }
            Some("Table")
                if json
                    && param("g") == Some("meta.k8s.io")
                    && matches!(param("v"), Some("v1") | Some("v1beta1")) =>
            {
                return Ok(Format {
                    output: Output::Table,
                    protobuf: false,
                })
            }
            Some("PartialObjectMetadata") if json && !list => {
                return Ok(Format {
                    output: Output::PartialMetadata,
                    protobuf: false,
                })
            }
            Some("PartialObjectMetadataList") if json && list => {
                return Ok(Format {
                    output: Output::PartialMetadataList,
                    protobuf: false,
                })
            }
            _ => continue,
        }
    }
    Err("only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf, application/json;as=Table;v=v1;g=meta.k8s.io".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_asks_for_a_table() {
        let f = negotiate(Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"), true).unwrap();
        assert_eq!(f.output, Output::Table);
        let plain = negotiate(Some("application/vnd.kubernetes.protobuf, */*"), false).unwrap();
        assert_eq!(plain.output, Output::Object);
        assert!(negotiate(Some("text/html"), false).is_err());
        let meta = negotiate(
            Some("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
            true,
        )
        .unwrap();
        assert_eq!(meta.output, Output::PartialMetadataList);
    }
}
