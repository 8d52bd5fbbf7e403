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

/// What kind of response the request produces, which decides the `as=` kinds it can take:
/// a list converts to `PartialObjectMetadataList`, while a watch converts each event's object
/// and so takes `PartialObjectMetadata`, as upstream's metadata clients ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Object,
    List,
    Watch,
}

/// The message of upstream's 406: the serializer's media types, conversions not included.
const NOT_ACCEPTABLE: &str = "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf";

/// Chooses the response format from an Accept header, or `Err` with upstream's message when
/// nothing acceptable is offered. Conversions (`as=`) are answered in JSON only, so a
/// protobuf range that asks for one is passed over for the client's next choice.
pub fn negotiate(accept: Option<&str>, shape: Shape) -> Result<Format, String> {
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
        let Some(target) = param("as") else {
            return Ok(Format {
                output: Output::Object,
                protobuf,
            });
        };
        let meta_v1 = param("g") == Some("meta.k8s.io") && param("v") == Some("v1");
        let output = match target {
            "Table"
                if param("g") == Some("meta.k8s.io")
                    && matches!(param("v"), Some("v1") | Some("v1beta1")) =>
            {
                Output::Table
            }
            "PartialObjectMetadata" if meta_v1 && shape != Shape::List => Output::PartialMetadata,
            "PartialObjectMetadataList" if meta_v1 && shape == Shape::List => {
                Output::PartialMetadataList
            }
            _ => continue,
        };
        if json {
            return Ok(Format {
                output,
                protobuf: false,
            });
        }
    }
    Err(NOT_ACCEPTABLE.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_asks_for_a_table() {
        let f = negotiate(Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"), Shape::List).unwrap();
        assert_eq!(f.output, Output::Table);
        let plain = negotiate(
            Some("application/vnd.kubernetes.protobuf, */*"),
            Shape::Object,
        )
        .unwrap();
        assert_eq!(plain.output, Output::Object);
        assert!(plain.protobuf);
        assert!(negotiate(Some("text/html"), Shape::Object).is_err());
        let meta = negotiate(
            Some("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
            Shape::List,
        )
        .unwrap();
        assert_eq!(meta.output, Output::PartialMetadataList);
    }

    #[test]
    fn metadata_watches_convert_each_event() {
        let kube_rs = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
        let f = negotiate(Some(kube_rs), Shape::Watch).unwrap();
        assert_eq!(f.output, Output::PartialMetadata);
        assert!(negotiate(Some(kube_rs), Shape::List).is_err());
        let list = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
        assert!(negotiate(Some(list), Shape::Watch).is_err());
        // client-go's metadata client offers protobuf first; conversions are served as JSON.
        let client_go = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";
        let f = negotiate(Some(client_go), Shape::Watch).unwrap();
        assert_eq!(
            f,
            Format {
                output: Output::PartialMetadata,
                protobuf: false
            }
        );
    }

    #[test]
    fn unknown_conversions_are_not_acceptable() {
        let err = negotiate(
            Some("application/json;as=Scale;g=autoscaling;v=v1"),
            Shape::Watch,
        )
        .unwrap_err();
        assert_eq!(err, NOT_ACCEPTABLE);
        assert!(negotiate(
            Some("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v2"),
            Shape::Object
        )
        .is_err());
    }
}
