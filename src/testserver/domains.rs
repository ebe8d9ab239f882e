//! frps's domain rules shared by the vhost-routed proxy types (http, tcpmux).

use super::shared::Inner;
use frp_proto::msg::NewProxy;

/// frps's domain checks for http proxies, with its error texts.
pub(super) fn validate_domains(inner: &Inner, np: &NewProxy) -> Result<(), String> {
    let host = &inner.cfg.subdomain_host;
    for domain in &np.custom_domains {
        if !host.is_empty()
            && host.split('.').count() < domain.split('.').count()
            && domain.contains(host.as_str())
        {
            return Err(format!(
                "custom domain [{domain}] should not belong to subdomain host [{host}]"
            ));
        }
    }
    if !np.subdomain.is_empty() {
        if host.is_empty() {
            return Err(
                "subdomain is not supported because this feature is not enabled in server".into(),
            );
        }
        if np.subdomain.contains('.') || np.subdomain.contains('*') {
            return Err("'.' and '*' are not supported in subdomain".into());
        }
    }
    Ok(())
}

/// `host:port`, or just `host` when the port is 80 (frps's `CanonicalAddr`).
pub(super) fn canonical_addr(host: &str, port: u16) -> String {
    if port == 80 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    }
}

/// The domains a vhost-routed proxy is reached by: its custom domains, then its subdomain
/// under the server's `subDomainHost`.
pub(super) fn routed_domains(inner: &Inner, np: &NewProxy) -> Vec<String> {
    let mut domains: Vec<String> = np
        .custom_domains
        .iter()
        .filter(|d| !d.is_empty())
        .cloned()
        .collect();
    if !np.subdomain.is_empty() {
        domains.push(format!("{}.{}", np.subdomain, inner.cfg.subdomain_host));
    }
    domains
}
