//! DefaultStorageClass: a new claim that names no class (neither `spec.storageClassName` nor
//! the beta annotation; an explicit `""` means "no class") gets the cluster's default
//! StorageClass, the newest if several are marked default.

use super::DefaultClass;

pub const DEFAULT_STORAGE_CLASS: DefaultClass = DefaultClass {
    name: "DefaultStorageClass",
    group: "",
    plural: "persistentvolumeclaims",
    field: "storageClassName",
    legacy_annotation: "volume.beta.kubernetes.io/storage-class",
    class_group: "storage.k8s.io",
    class_plural: "storageclasses",
    default_annotations: &[
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ],
};
