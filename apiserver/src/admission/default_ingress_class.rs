//! DefaultIngressClass: a new Ingress that names no class (neither `spec.ingressClassName` nor
//! the legacy `kubernetes.io/ingress.class` annotation) gets the cluster's default
//! IngressClass, the newest if several are marked default.

use super::DefaultClass;

pub const DEFAULT_INGRESS_CLASS: DefaultClass = DefaultClass {
    name: "DefaultIngressClass",
    group: "networking.k8s.io",
    plural: "ingresses",
    field: "ingressClassName",
    legacy_annotation: "kubernetes.io/ingress.class",
    class_group: "networking.k8s.io",
    class_plural: "ingressclasses",
    default_annotations: &["ingressclass.kubernetes.io/is-default-class"],
};
