//! YAML 1.1 booleans. frpc reads YAML with go-yaml v2 (through sigs.k8s.io/yaml), which resolves
//! the plain scalars `y`, `yes`, `on`, `n`, `no`, `off` (and their capitalised and upper-case
//! forms) as booleans; serde_norway follows YAML 1.2 and keeps them as strings. The boolean
//! fields of frpc's schema get them back as booleans here, for YAML documents only, so TOML and
//! JSON stay as strict as in frpc.

use serde_json::Value;

/// Keys (lowercased) of frpc's boolean fields, wherever they appear in the document.
const BOOL_FIELDS: &[&str] = &[
    "loginfailexit",
    "disableprintcolor",
    "pprofenable",
    "enable",
    "disablecustomtlsfirstbyte",
    "tcpmux",
    "enabled",
    "useencryption",
    "usecompression",
    "keeptunnelopen",
    "disableassistedaddrs",
];

/// Maps whose every value is a boolean (their keys are free-form).
const BOOL_MAPS: &[&str] = &["featuregates"];

/// Maps whose keys and values are the user's own: nothing in them is a field.
const FREE_FORM: &[&str] = &[
    "metadatas",
    "annotations",
    "set",
    "additionalendpointparams",
];

/// go-yaml v2's boolean for a plain scalar, if it is one.
fn yaml11_bool(text: &str) -> Option<bool> {
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Some(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Some(false)
        }
        _ => None,
    }
}

fn to_bool(v: &mut Value) {
    if let Some(b) = v.as_str().and_then(yaml11_bool) {
        *v = Value::Bool(b);
    }
}

/// Turns YAML 1.1 boolean words into booleans where frpc's schema has a boolean.
pub fn booleans(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                let key = k.to_lowercase();
                if BOOL_FIELDS.contains(&key.as_str()) {
                    to_bool(child);
                } else if BOOL_MAPS.contains(&key.as_str()) {
                    if let Value::Object(gates) = child {
                        gates.values_mut().for_each(to_bool);
                    }
                } else if !FREE_FORM.contains(&key.as_str()) {
                    booleans(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(booleans),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml11_words_become_booleans_in_boolean_fields_only() {
        let mut v = json!({
            "loginFailExit": "no",
            "transport": {"tcpMux": "Off", "tls": {"enable": "YES"}},
            "featureGates": {"VirtualNet": "on"},
            "metadatas": {"enabled": "yes"},
            "user": "yes",
            "proxies": [{"name": "n", "enabled": "y", "transport": {"useEncryption": "On"}}],
            "log": {"disablePrintColor": "maybe"},
        });
        booleans(&mut v);
        assert_eq!(
            v,
            json!({
                "loginFailExit": false,
                "transport": {"tcpMux": false, "tls": {"enable": true}},
                "featureGates": {"VirtualNet": true},
                "metadatas": {"enabled": "yes"},
                "user": "yes",
                "proxies": [{"name": "n", "enabled": true, "transport": {"useEncryption": true}}],
                "log": {"disablePrintColor": "maybe"},
            })
        );
    }
}
