//! `frpc status` and `frpc stop`: calls to a running client's admin API (`webServer` of the
//! config file), printed as frpc prints them.

use expose::frpc::WebServer;
use serde_json::Value;
use std::time::Duration;

/// frpc's order of proxy types in `frpc status`.
const TYPES: &[&str] = &[
    "tcp", "udp", "tcpmux", "http", "https", "stcp", "sudp", "xtcp",
];

/// Which admin call.
#[derive(Debug, Clone, Copy)]
pub enum Call {
    /// `GET /api/status`, printed as tables.
    Status,
    /// `POST /api/stop`.
    Stop,
}

/// Makes the call and returns what frpc prints on success, or its error text.
pub async fn run(web: &WebServer, call: Call, timeout: Duration) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let host = if web.addr.contains(':') {
        format!("[{}]", web.addr)
    } else {
        web.addr.clone()
    };
    let base = format!("http://{host}:{}", web.port);
    let req = match call {
        Call::Status => client.get(format!("{base}/api/status")),
        Call::Stop => client.post(format!("{base}/api/stop")),
    };
    let req = if web.user.is_empty() && web.password.is_empty() {
        req
    } else {
        req.basic_auth(&web.user, Some(web.password.expose()))
    };
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let code = resp.status().as_u16();
    if code != 200 {
        return Err(format!("api status code [{code}]"));
    }
    let body = resp.text().await.map_err(|e| e.to_string())?;
    match call {
        Call::Stop => Ok("stop success\n".into()),
        Call::Status => {
            let v: Value = serde_json::from_str(&body)
                .map_err(|_| format!("unmarshal http response error: {}", body.trim()))?;
            Ok(tables(&v))
        }
    }
}

/// `Proxy Status...` and one aligned table per proxy type.
fn tables(v: &Value) -> String {
    let mut out = String::from("Proxy Status...\n\n");
    for typ in TYPES {
        let Some(list) = v
            .get(*typ)
            .and_then(Value::as_array)
            .filter(|l| !l.is_empty())
        else {
            continue;
        };
        out.push_str(&typ.to_uppercase());
        out.push('\n');
        let mut rows = vec![[
            "Name",
            "Status",
            "LocalAddr",
            "Plugin",
            "RemoteAddr",
            "Error",
        ]
        .map(str::to_owned)];
        for p in list {
            let f = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            rows.push([
                f("name"),
                f("status"),
                f("local_addr"),
                f("plugin"),
                f("remote_addr"),
                f("err"),
            ]);
        }
        let widths: Vec<usize> = (0..6)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        for r in &rows {
            let mut line = String::new();
            for (c, cell) in r.iter().enumerate() {
                line.push_str(cell);
                let pad = widths[c] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(&expose::text::escape_unsafe(line.trim_end()));
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// A Go duration such as `30s`, `500ms` or `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}");
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn status_tables() {
        let v = serde_json::json!({"tcp": [{"name": "ssh", "status": "running",
            "local_addr": "127.0.0.1:22", "plugin": "", "remote_addr": "h:6000", "err": ""}]});
        assert_eq!(
            tables(&v),
            "Proxy Status...\n\nTCP\nName  Status   LocalAddr     Plugin  RemoteAddr  Error\n\
             ssh   running  127.0.0.1:22          h:6000\n\n"
        );
    }
}
