//! The resource types the server knows: the built-in ones and those registered by CRDs.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::status::ApiError;

/// Built-in behaviour a resource type gets beyond generic JSON storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    Namespace,
    Secret,
    ConfigMap,
    ServiceAccount,
    Event,
    Lease,
    Crd,
    Custom,
}

/// One resource (group + plural), served at one or more versions.
#[derive(Debug, Clone)]
pub(crate) struct ResourceType {
    pub(crate) group: String,
    /// Served versions; the first one is the preferred (and storage) version.
    pub(crate) versions: Vec<String>,
    pub(crate) plural: String,
    pub(crate) singular: String,
    pub(crate) kind: String,
    pub(crate) list_kind: String,
    pub(crate) namespaced: bool,
    pub(crate) short_names: Vec<String>,
    pub(crate) categories: Vec<String>,
    pub(crate) status_subresource: bool,
    /// Whether `metadata.generation` is maintained (custom resources and CRDs, not core types).
    pub(crate) generation: bool,
    pub(crate) builtin: Builtin,
    /// `openAPIV3Schema` per version, for defaults and list types.
    pub(crate) schemas: BTreeMap<String, Value>,
}

/// The key of a resource type: (group, plural).
pub(crate) type ResKey = (String, String);

impl ResourceType {
    pub(crate) fn key(&self) -> ResKey {
        (self.group.clone(), self.plural.clone())
    }

    pub(crate) fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// Custom resources return the deleted object; built-in types a `Status` (as the API server).
    pub(crate) fn returns_deleted_object(&self) -> bool {
        matches!(self.builtin, Builtin::Custom | Builtin::Namespace)
    }

    pub(crate) fn schema(&self, version: &str) -> Option<&Value> {
        self.schemas.get(version)
    }

    fn builtin(
        group: &str,
        version: &str,
        plural: &str,
        kind: &str,
        namespaced: bool,
        short_names: &[&str],
        builtin: Builtin,
    ) -> Self {
        Self {
            group: group.into(),
            versions: vec![version.into()],
            plural: plural.into(),
            singular: kind.to_lowercase(),
            kind: kind.into(),
            list_kind: format!("{kind}List"),
            namespaced,
            short_names: short_names.iter().map(|s| s.to_string()).collect(),
            categories: Vec::new(),
            status_subresource: matches!(builtin, Builtin::Namespace | Builtin::Crd),
            generation: builtin == Builtin::Crd,
            builtin,
            schemas: BTreeMap::new(),
        }
    }
}

/// The types every server starts with.
pub(crate) fn builtins() -> Vec<ResourceType> {
    let mut crd = ResourceType::builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        Builtin::Crd,
    );
    crd.categories = vec!["api-extensions".into()];
    vec![
        ResourceType::builtin(
            "",
            "v1",
            "namespaces",
            "Namespace",
            false,
            &["ns"],
            Builtin::Namespace,
        ),
        ResourceType::builtin("", "v1", "secrets", "Secret", true, &[], Builtin::Secret),
        ResourceType::builtin(
            "",
            "v1",
            "configmaps",
            "ConfigMap",
            true,
            &["cm"],
            Builtin::ConfigMap,
        ),
        ResourceType::builtin(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            &["sa"],
            Builtin::ServiceAccount,
        ),
        ResourceType::builtin("", "v1", "events", "Event", true, &["ev"], Builtin::Event),
        ResourceType::builtin(
            "events.k8s.io",
            "v1",
            "events",
            "Event",
            true,
            &["ev"],
            Builtin::Event,
        ),
        ResourceType::builtin(
            "coordination.k8s.io",
            "v1",
            "leases",
            "Lease",
            true,
            &[],
            Builtin::Lease,
        ),
        crd,
    ]
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str()
}

/// The resource type a CustomResourceDefinition declares.
pub(crate) fn from_crd(crd: &Value) -> Result<ResourceType, ApiError> {
    let name = str_at(crd, &["metadata", "name"])
        .unwrap_or_default()
        .to_string();
    let invalid = |field: &str, msg: &str| {
        ApiError::invalid(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            &name,
            &[(field, "FieldValueRequired", msg.to_string())],
        )
    };
    let spec = crd
        .get("spec")
        .ok_or_else(|| invalid("spec", "Required value"))?;
    let group = str_at(spec, &["group"]).ok_or_else(|| invalid("spec.group", "Required value"))?;
    let plural = str_at(spec, &["names", "plural"])
        .ok_or_else(|| invalid("spec.names.plural", "Required value"))?;
    let kind = str_at(spec, &["names", "kind"])
        .ok_or_else(|| invalid("spec.names.kind", "Required value"))?;
    if name != format!("{plural}.{group}") {
        return Err(ApiError::invalid(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            &name,
            &[(
                "metadata.name",
                "FieldValueInvalid",
                format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
            )],
        ));
    }
    let scope = str_at(spec, &["scope"]).unwrap_or("Namespaced");
    let strings = |key: &str| -> Vec<String> {
        spec.get("names")
            .and_then(|n| n.get(key))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut versions = Vec::new();
    let mut storage_first = Vec::new();
    let mut schemas = BTreeMap::new();
    let mut status_subresource = false;
    for v in spec
        .get("versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(vname) = v.get("name").and_then(Value::as_str) else {
            continue;
        };
        if v.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage_first.push(vname.to_string());
        } else {
            versions.push(vname.to_string());
        }
        if v.pointer("/subresources/status").is_some() {
            status_subresource = true;
        }
        if let Some(s) = v.pointer("/schema/openAPIV3Schema") {
            schemas.insert(vname.to_string(), s.clone());
        }
    }
    storage_first.extend(versions);
    if storage_first.is_empty() {
        return Err(invalid(
            "spec.versions",
            "must have exactly one version marked as storage version",
        ));
    }
    Ok(ResourceType {
        group: group.into(),
        versions: storage_first,
        plural: plural.into(),
        singular: str_at(spec, &["names", "singular"])
            .map_or_else(|| kind.to_lowercase(), String::from),
        kind: kind.into(),
        list_kind: str_at(spec, &["names", "listKind"])
            .map_or_else(|| format!("{kind}List"), String::from),
        namespaced: scope == "Namespaced",
        short_names: strings("shortNames"),
        categories: strings("categories"),
        status_subresource,
        generation: true,
        builtin: Builtin::Custom,
        schemas,
    })
}

/// Fills in `default:` values of a structural schema, as the API server does on read and write.
pub(crate) fn apply_defaults(schema: &Value, obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        if let (Some(items), Some(arr)) = (schema.get("items"), obj.as_array_mut()) {
            for item in arr {
                apply_defaults(items, item);
            }
        }
        return;
    };
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (key, prop) in props {
            if !map.contains_key(key)
                && let Some(d) = prop.get("default")
            {
                map.insert(key.clone(), d.clone());
            }
            if let Some(child) = map.get_mut(key) {
                apply_defaults(prop, child);
            }
        }
    } else if let Some(ap) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        for child in map.values_mut() {
            apply_defaults(ap, child);
        }
    }
}

/// How a list merges under server-side apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListType {
    Atomic,
    Set,
    Map(Vec<String>),
}

/// The list type at a path of field names (list items are stepped over), from the schema or
/// from the well-known metadata fields.
pub(crate) fn list_type(schema: Option<&Value>, path: &[&str]) -> ListType {
    match path {
        ["metadata", "finalizers"] => return ListType::Set,
        ["metadata", "ownerReferences"] => return ListType::Map(vec!["uid".into()]),
        _ => {}
    }
    let Some(mut s) = schema else {
        return ListType::Atomic;
    };
    for p in path {
        let next = if let Some(items) = s.get("items") {
            items.get("properties").and_then(|pr| pr.get(*p))
        } else {
            s.get("properties")
                .and_then(|pr| pr.get(*p))
                .or_else(|| s.get("additionalProperties"))
        };
        match next {
            Some(n) => s = n,
            None => return ListType::Atomic,
        }
    }
    match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => ListType::Set,
        Some("map") => ListType::Map(
            s.get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        _ => ListType::Atomic,
    }
}

/// Whether a map at this path is atomic (`x-kubernetes-map-type: atomic`).
pub(crate) fn map_is_atomic(schema: Option<&Value>, path: &[&str]) -> bool {
    let Some(mut s) = schema else { return false };
    for p in path {
        let next = if let Some(items) = s.get("items") {
            items.get("properties").and_then(|pr| pr.get(*p))
        } else {
            s.get("properties")
                .and_then(|pr| pr.get(*p))
                .or_else(|| s.get("additionalProperties"))
        };
        match next {
            Some(n) => s = n,
            None => return false,
        }
    }
    s.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic")
}

/// Keeps only the fields of a structural schema: unknown fields are dropped unless the schema
/// says `x-kubernetes-preserve-unknown-fields` (the API server's pruning).
pub(crate) fn prune(schema: &Value, obj: &mut Value, top: bool) {
    if schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
        && schema.get("properties").is_none()
    {
        return;
    }
    if let Some(arr) = obj.as_array_mut() {
        if let Some(items) = schema.get("items") {
            for item in arr {
                prune(items, item, false);
            }
        }
        return;
    }
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let preserve = schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true);
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            if top && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            match props.get(&key) {
                Some(p) => {
                    if let Some(child) = map.get_mut(&key) {
                        prune(p, child, false);
                    }
                }
                None if !preserve => {
                    map.remove(&key);
                }
                None => {}
            }
        }
    } else if let Some(ap) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        for child in map.values_mut() {
            prune(ap, child, false);
        }
    } else if schema.get("type").and_then(Value::as_str) == Some("object")
        && !preserve
        && schema.get("additionalProperties").is_none()
        && !top
    {
        // An object schema without properties: the API server keeps nothing.
        *map = Map::new();
    }
}
