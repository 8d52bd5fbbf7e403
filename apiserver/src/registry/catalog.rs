//! Every resource ferrokube serves, declared once. Discovery, OpenAPI, routing, storage and
//! tables are all derived from this list.

use super::resource::{Behaviour, ResourceDef, SelectableField, Subresource};

use Subresource::{Approval, Binding, Eviction, Finalize, Scale, Status};

const fn field(label: &'static str, pointer: &'static str) -> SelectableField {
    SelectableField {
        label,
        pointer,
        default: "",
    }
}

const ALL: &[&str] = &["all"];

macro_rules! resource {
    ($group:literal, $kind:literal, $plural:literal, ns = $ns:expr $(, short = [$($short:literal),*])? $(, cat = $cat:expr)? $(, sub = [$($sub:expr),*])? $(, fields = $fields:expr)? $(, generation = $gen:expr)? $(, create_on_update = $cou:expr)? $(, storage = $storage:literal)? $(, behaviour = $b:expr)? $(, version = $version:literal)?) => {
        ResourceDef {
            group: $group,
            version: { let _v = "v1"; $(let _v = $version;)? _v },
            kind: $kind,
            plural: $plural,
            short_names: &[$($($short),*)?],
            categories: { let _c: &[&str] = &[]; $(let _c = $cat;)? _c },
            namespaced: $ns,
            subresources: &[$($($sub),*)?],
            fields: { let _f: &[SelectableField] = &[]; $(let _f = $fields;)? _f },
            tracks_generation: { let _g = false; $(let _g = $gen;)? _g },
            create_on_update: { let _c = false; $(let _c = $cou;)? _c },
            storage: { let _s = $plural; $(let _s = $storage;)? _s },
            behaviour: { let _b = Behaviour::Plain; $(let _b = $b;)? _b },
        }
    };
}

const POD_FIELDS: &[SelectableField] = &[
    field("spec.nodeName", "/spec/nodeName"),
    field("spec.restartPolicy", "/spec/restartPolicy"),
    field("spec.schedulerName", "/spec/schedulerName"),
    field("spec.serviceAccountName", "/spec/serviceAccountName"),
    SelectableField {
        label: "spec.hostNetwork",
        pointer: "/spec/hostNetwork",
        default: "false",
    },
    field("status.phase", "/status/phase"),
    field("status.podIP", "/status/podIP"),
    field("status.nominatedNodeName", "/status/nominatedNodeName"),
];

const EVENT_FIELDS: &[SelectableField] = &[
    field("involvedObject.kind", "/involvedObject/kind"),
    field("involvedObject.namespace", "/involvedObject/namespace"),
    field("involvedObject.name", "/involvedObject/name"),
    field("involvedObject.uid", "/involvedObject/uid"),
    field("involvedObject.apiVersion", "/involvedObject/apiVersion"),
    field(
        "involvedObject.resourceVersion",
        "/involvedObject/resourceVersion",
    ),
    field("involvedObject.fieldPath", "/involvedObject/fieldPath"),
    field("reason", "/reason"),
    field("reportingComponent", "/reportingComponent"),
    field("source", "/source/component"),
    field("type", "/type"),
];

/// All served resources.
pub static RESOURCES: &[ResourceDef] = &[
    resource!(
        "",
        "Namespace",
        "namespaces",
        ns = false,
        short = ["ns"],
        sub = [Status, Finalize],
        fields = &[field("status.phase", "/status/phase")],
        behaviour = Behaviour::Namespace
    ),
    resource!(
        "",
        "Pod",
        "pods",
        ns = true,
        short = ["po"],
        cat = ALL,
        sub = [Status, Binding, Eviction],
        fields = POD_FIELDS,
        behaviour = Behaviour::Pod
    ),
    resource!(
        "",
        "Node",
        "nodes",
        ns = false,
        short = ["no"],
        sub = [Status],
        fields = &[SelectableField {
            label: "spec.unschedulable",
            pointer: "/spec/unschedulable",
            default: "false"
        }]
    ),
    resource!(
        "",
        "Service",
        "services",
        ns = true,
        short = ["svc"],
        cat = ALL,
        sub = [Status],
        fields = &[
            field("spec.clusterIP", "/spec/clusterIP"),
            field("spec.type", "/spec/type")
        ],
        behaviour = Behaviour::Service
    ),
    resource!(
        "",
        "Endpoints",
        "endpoints",
        ns = true,
        short = ["ep"],
        create_on_update = true
    ),
    resource!("", "ConfigMap", "configmaps", ns = true, short = ["cm"]),
    resource!(
        "",
        "Secret",
        "secrets",
        ns = true,
        fields = &[field("type", "/type")]
    ),
    resource!(
        "",
        "ServiceAccount",
        "serviceaccounts",
        ns = true,
        short = ["sa"]
    ),
    resource!(
        "",
        "Event",
        "events",
        ns = true,
        short = ["ev"],
        fields = EVENT_FIELDS,
        create_on_update = true
    ),
    resource!(
        "",
        "LimitRange",
        "limitranges",
        ns = true,
        short = ["limits"]
    ),
    resource!(
        "",
        "ResourceQuota",
        "resourcequotas",
        ns = true,
        short = ["quota"],
        sub = [Status]
    ),
    resource!("", "PodTemplate", "podtemplates", ns = true),
    resource!(
        "",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        ns = true,
        short = ["pvc"],
        sub = [Status]
    ),
    resource!(
        "",
        "PersistentVolume",
        "persistentvolumes",
        ns = false,
        short = ["pv"],
        sub = [Status]
    ),
    resource!(
        "",
        "ReplicationController",
        "replicationcontrollers",
        ns = true,
        short = ["rc"],
        cat = ALL,
        sub = [Status, Scale],
        fields = &[field("status.replicas", "/status/replicas")],
        generation = true
    ),
    resource!("coordination.k8s.io", "Lease", "leases", ns = true),
    resource!(
        "apps",
        "Deployment",
        "deployments",
        ns = true,
        short = ["deploy"],
        cat = ALL,
        sub = [Status, Scale],
        generation = true
    ),
    resource!(
        "apps",
        "ReplicaSet",
        "replicasets",
        ns = true,
        short = ["rs"],
        cat = ALL,
        sub = [Status, Scale],
        fields = &[field("status.replicas", "/status/replicas")],
        generation = true
    ),
    resource!(
        "apps",
        "StatefulSet",
        "statefulsets",
        ns = true,
        short = ["sts"],
        cat = ALL,
        sub = [Status, Scale],
        generation = true
    ),
    resource!(
        "apps",
        "DaemonSet",
        "daemonsets",
        ns = true,
        short = ["ds"],
        cat = ALL,
        sub = [Status],
        generation = true
    ),
    resource!(
        "apps",
        "ControllerRevision",
        "controllerrevisions",
        ns = true
    ),
    resource!(
        "batch",
        "Job",
        "jobs",
        ns = true,
        cat = ALL,
        sub = [Status],
        fields = &[field("status.successful", "/status/succeeded")],
        generation = true,
        behaviour = Behaviour::Job
    ),
    resource!(
        "batch",
        "CronJob",
        "cronjobs",
        ns = true,
        short = ["cj"],
        cat = ALL,
        sub = [Status],
        generation = true
    ),
    resource!(
        "discovery.k8s.io",
        "EndpointSlice",
        "endpointslices",
        ns = true
    ),
    resource!(
        "events.k8s.io",
        "Event",
        "events",
        ns = true,
        short = ["ev"],
        create_on_update = true,
        behaviour = Behaviour::Event
    ),
    resource!(
        "policy",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        ns = true,
        short = ["pdb"],
        sub = [Status],
        generation = true
    ),
    resource!(
        "autoscaling",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        ns = true,
        short = ["hpa"],
        cat = ALL,
        sub = [Status],
        version = "v2"
    ),
    resource!(
        "certificates.k8s.io",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        ns = false,
        short = ["csr"],
        sub = [Status, Approval],
        fields = &[field("spec.signerName", "/spec/signerName")]
    ),
    resource!(
        "networking.k8s.io",
        "Ingress",
        "ingresses",
        ns = true,
        short = ["ing"],
        sub = [Status],
        generation = true
    ),
    resource!(
        "networking.k8s.io",
        "IngressClass",
        "ingressclasses",
        ns = false
    ),
    resource!(
        "networking.k8s.io",
        "NetworkPolicy",
        "networkpolicies",
        ns = true,
        short = ["netpol"],
        generation = true
    ),
    resource!(
        "storage.k8s.io",
        "StorageClass",
        "storageclasses",
        ns = false,
        short = ["sc"]
    ),
    resource!("storage.k8s.io", "CSIDriver", "csidrivers", ns = false),
    resource!("storage.k8s.io", "CSINode", "csinodes", ns = false),
    resource!(
        "storage.k8s.io",
        "VolumeAttachment",
        "volumeattachments",
        ns = false,
        sub = [Status]
    ),
    resource!(
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        ns = false,
        generation = true
    ),
    resource!(
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        ns = false,
        generation = true
    ),
    resource!("node.k8s.io", "RuntimeClass", "runtimeclasses", ns = false),
    resource!(
        "scheduling.k8s.io",
        "PriorityClass",
        "priorityclasses",
        ns = false,
        short = ["pc"]
    ),
    resource!("rbac.authorization.k8s.io", "Role", "roles", ns = true),
    resource!(
        "rbac.authorization.k8s.io",
        "ClusterRole",
        "clusterroles",
        ns = false
    ),
    resource!(
        "rbac.authorization.k8s.io",
        "RoleBinding",
        "rolebindings",
        ns = true
    ),
    resource!(
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        "clusterrolebindings",
        ns = false
    ),
];

/// The groups in the order discovery lists them (upstream's preferred order).
pub const GROUP_ORDER: &[&str] = &[
    "",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
];

/// Finds a resource by group, version and plural name.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource that owns a storage prefix (the first declared, e.g. core events).
pub fn owner_of_storage(storage: &str) -> Option<&'static ResourceDef> {
    RESOURCES.iter().find(|r| r.storage == storage)
}
