//! Generates the protobuf field table of every Kubernetes API message from the k8s-pb sources.
//!
//! The protobuf decoder must know, for every built-in message, which field number carries
//! which field and of what wire type. k8s-pb's prost-generated sources state exactly that in
//! their `#[prost(...)]` attributes, so this script reads those sources (located through the
//! workspace `Cargo.lock` and the cargo registry, or `K8S_PB_SRC`) and writes a static table to
//! `$OUT_DIR/k8s_pb_table.rs`. Resource impls give the apiVersion/kind of top-level types.

use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=K8S_PB_SRC");
    let src = locate_k8s_pb_src();
    println!("cargo:rerun-if-changed={}", src.display());

    let mut files = Vec::new();
    collect_rs_files(&src, &mut files);
    files.sort();

    let mut messages = BTreeMap::new();
    let mut resources = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap_or(file);
        let module = module_path(rel);
        if module.is_empty() {
            continue;
        }
        let text =
            fs::read_to_string(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        parse_file(&text, &module, &mut messages, &mut resources);
    }

    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("k8s_pb_table.rs"), render(&messages, &resources))
        .expect("writing k8s_pb_table.rs");
}

/// Finds k8s-pb's `src` directory: `K8S_PB_SRC`, else the version pinned in the workspace
/// lock file inside the cargo registry.
fn locate_k8s_pb_src() -> PathBuf {
    if let Ok(dir) = env::var("K8S_PB_SRC") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let lock = manifest
        .ancestors()
        .map(|d| d.join("Cargo.lock"))
        .find(|p| p.is_file())
        .expect("no Cargo.lock above the apimachinery crate; set K8S_PB_SRC");
    let versions = locked_versions(&fs::read_to_string(&lock).expect("reading Cargo.lock"));
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("neither CARGO_HOME nor HOME is set; set K8S_PB_SRC");
    let registry = cargo_home.join("registry").join("src");
    let mut indexes: Vec<PathBuf> = fs::read_dir(&registry)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    indexes.sort();
    for version in versions.iter().rev() {
        for index in &indexes {
            let src = index.join(format!("k8s-pb-{version}")).join("src");
            if src.join("lib.rs").is_file() {
                return src;
            }
        }
    }
    panic!(
        "k8s-pb {versions:?} sources not found under {}; set K8S_PB_SRC",
        registry.display()
    );
}

/// Versions of k8s-pb recorded in a Cargo.lock, in file order.
fn locked_versions(lock: &str) -> Vec<String> {
    let mut versions = Vec::new();
    let mut in_k8s_pb = false;
    for line in lock.lines() {
        let line = line.trim();
        if line == "[[package]]" {
            in_k8s_pb = false;
        } else if line == "name = \"k8s-pb\"" {
            in_k8s_pb = true;
        } else if let (true, Some(v)) = (in_k8s_pb, line.strip_prefix("version = \"")) {
            versions.push(v.trim_end_matches('"').to_string());
        }
    }
    versions
}

fn collect_rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Rust module segments of a source file (`api/apps/v1/mod.rs` -> `[api, apps, v1]`).
fn module_path(rel: &Path) -> Vec<String> {
    let mut segments: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = segments.pop() {
        if last != "mod.rs" && last != "lib.rs" {
            segments.push(last.trim_end_matches(".rs").to_string());
        }
    }
    segments
}

/// The OpenAPI-style package of a module (`apiextensions_apiserver::pkg` ->
/// `io.k8s.apiextensions-apiserver.pkg`).
fn package(module: &[String]) -> String {
    let mut name = String::from("io.k8s");
    for (i, seg) in module.iter().enumerate() {
        name.push('.');
        if i == 0 {
            name.push_str(&seg.replace('_', "-"));
        } else {
            name.push_str(seg);
        }
    }
    name
}

struct Field {
    tag: u32,
    name: String,
    ty: String,
    message: Option<String>,
    card: &'static str,
}

struct Resource {
    api_version: String,
    kind: String,
    message: String,
}

fn parse_file(
    text: &str,
    module: &[String],
    messages: &mut BTreeMap<String, Vec<Field>>,
    resources: &mut Vec<Resource>,
) {
    let pkg = package(module);
    let mut lines = text.lines();
    let mut current: Option<String> = None;
    let mut resource: Option<Resource> = None;
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if let Some(rest) = line.strip_prefix("pub struct ") {
            let name = rest.trim_end_matches('{').trim_end_matches("{}").trim();
            let full = format!("{pkg}.{name}");
            messages.insert(full.clone(), Vec::new());
            current = (!rest.ends_with("{}")).then_some(full);
        } else if line == "}" {
            current = None;
            if let Some(r) = resource.take() {
                resources.push(r);
            }
        } else if let Some(rest) = line.strip_prefix("impl crate::Resource for ") {
            let name = rest.trim_end_matches(" {").trim();
            resource = Some(Resource {
                api_version: String::new(),
                kind: String::new(),
                message: format!("{pkg}.{name}"),
            });
        } else if let Some(r) = resource.as_mut() {
            if let Some(v) = const_str(trimmed, "API_VERSION") {
                r.api_version = v;
            } else if let Some(v) = const_str(trimmed, "KIND") {
                r.kind = v;
            }
        } else if let (Some(msg), Some(attr)) = (
            current.as_ref(),
            trimmed
                .strip_prefix("#[prost(")
                .and_then(|a| a.strip_suffix(")]")),
        ) {
            let mut decl = String::new();
            for next in lines.by_ref() {
                decl.push_str(next.trim());
                decl.push(' ');
                let open = decl.matches('<').count();
                if decl.trim_end().ends_with(',') && open == decl.matches('>').count() {
                    break;
                }
            }
            let field = parse_field(attr, decl.trim(), module);
            messages.get_mut(msg).expect("inserted above").push(field);
        }
    }
}

fn const_str(line: &str, name: &str) -> Option<String> {
    let rest = line.strip_prefix(&format!("const {name}: &'static str = \""))?;
    Some(rest.trim_end_matches("\";").to_string())
}

/// Parses one `#[prost(...)]` attribute and the field declaration that follows it.
fn parse_field(attr: &str, decl: &str, module: &[String]) -> Field {
    let tag = attr
        .split("tag = \"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no tag in #[prost({attr})]"));
    let name = decl
        .strip_prefix("pub ")
        .and_then(|d| d.split(':').next())
        .map(|n| n.trim().trim_start_matches("r#").to_string())
        .unwrap_or_else(|| panic!("unexpected field declaration {decl:?}"));
    let (card, ty) = if let Some(map) = attr.strip_prefix("btree_map = \"string, ") {
        ("Map", map.split('"').next().unwrap_or_default().to_string())
    } else {
        let ty = attr.split(',').next().unwrap_or_default();
        let card = if attr.contains(" repeated") {
            "Repeated"
        } else {
            "Optional"
        };
        (card, ty.split(' ').next().unwrap_or_default().to_string())
    };
    let message = (ty == "message").then(|| message_type(decl, module));
    let ty = match ty.as_str() {
        "string" => "String",
        "bytes" => "Bytes",
        "bool" => "Bool",
        "int32" => "Int32",
        "int64" => "Int64",
        "double" => "Double",
        "message" => "Message",
        other => panic!("unsupported protobuf kind {other:?} in #[prost({attr})]"),
    };
    Field {
        tag,
        name,
        ty: ty.to_string(),
        message,
        card,
    }
}

/// The full name of the message type in a field declaration, with wrappers
/// (`Option`, `Vec`, `Box`, `BTreeMap<String, _>`) removed and `super::` resolved.
fn message_type(decl: &str, module: &[String]) -> String {
    let ty = decl.split_once(':').map(|(_, t)| t).unwrap_or_default();
    let path = ty
        .split(['<', '>', ',', ' '])
        .filter(|t| !t.is_empty())
        .rfind(|t| {
            !matches!(
                *t,
                "::core::option::Option"
                    | "::prost::alloc::vec::Vec"
                    | "::prost::alloc::boxed::Box"
                    | "::prost::alloc::collections::BTreeMap"
                    | "::prost::alloc::string::String"
            )
        })
        .unwrap_or_else(|| panic!("no message type in {decl:?}"));
    let mut segments: Vec<&str> = path.split("::").collect();
    let name = segments.pop().unwrap_or_default();
    let mut resolved: Vec<String> = module.to_vec();
    for seg in segments {
        match seg {
            "super" => {
                resolved.pop();
            }
            "crate" => resolved.clear(),
            "self" => {}
            other => resolved.push(other.to_string()),
        }
    }
    format!("{}.{name}", package(&resolved))
}

fn render(messages: &BTreeMap<String, Vec<Field>>, resources: &[Resource]) -> String {
    let index: BTreeMap<&str, usize> = messages
        .keys()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let mut out = String::from("// Generated by apimachinery/build.rs from the k8s-pb sources.\n");
    out.push_str("pub(super) static MESSAGES: &[MessageDef] = &[\n");
    for (name, fields) in messages {
        let mut fields: Vec<&Field> = fields.iter().collect();
        fields.sort_by_key(|f| f.tag);
        let _ = writeln!(out, "    MessageDef {{ name: {name:?}, fields: &[");
        for f in fields {
            let ty = match &f.message {
                Some(m) => {
                    let i = index
                        .get(m.as_str())
                        .unwrap_or_else(|| panic!("{name}.{}: unknown message {m}", f.name));
                    format!("Ty::Message({i})")
                }
                None => format!("Ty::{}", f.ty),
            };
            let _ = writeln!(
                out,
                "        FieldDef {{ tag: {}, name: {:?}, ty: {ty}, card: Card::{} }},",
                f.tag, f.name, f.card
            );
        }
        out.push_str("    ] },\n");
    }
    out.push_str("];\n");
    out.push_str("pub(super) static RESOURCES: &[ResourceDef] = &[\n");
    for r in resources {
        let i = index
            .get(r.message.as_str())
            .unwrap_or_else(|| panic!("resource {} has no message", r.message));
        let _ = writeln!(
            out,
            "    ResourceDef {{ api_version: {:?}, kind: {:?}, message: {i} }},",
            r.api_version, r.kind
        );
    }
    out.push_str("];\n");
    out
}
