//! `cargo bench -p eso-template`: parse time and renders per second for a realistic
//! ExternalSecret template (20 keys, PEM filtering, JSON round trips, base64, range).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine as _;
use eso_template::{ParseOptions, Template, Value};

const TEMPLATE: &str = r#"{{- $cfg := fromJson .config -}}
DB_HOST={{ .db_host }}
DB_PORT={{ $cfg.port }}
DB_USER={{ .db_user }}
DB_PASS={{ .db_pass | b64enc }}
DB_URL={{ printf "postgres://%s:%s@%s:%v/%s" .db_user (.db_pass | urlquery) .db_host $cfg.port $cfg.name }}
API_KEY={{ .api_key | trim }}
API_KEY_SHA={{ .api_key | sha256sum }}
TLS_CERT={{ filterPEM "CERTIFICATE" .bundle | b64enc }}
TLS_KEY={{ filterPEM "PRIVATE KEY" .bundle | b64enc }}
TLS_CA={{ filterPEM "CERTIFICATE" .ca | nindent 2 }}
CONFIG={{ $cfg | toJson }}
FEATURES={{ $cfg.features | join "," }}
LIMITS={{ dict "cpu" $cfg.cpu "mem" .mem | toPrettyJson }}
REDIS={{ .redis_url | default "redis://localhost" }}
SMTP={{ .smtp_user }}:{{ .smtp_pass | b64enc }}
TOKEN={{ .token | b64dec | b64enc }}
{{ range $k, $v := . }}{{ if hasPrefix "env_" $k }}{{ $k | trimPrefix "env_" | upper }}={{ $v | quote }}
{{ end }}{{ end -}}
"#;

fn pem_block(kind: &str, len: usize, seed: u8) -> String {
    let body: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(body);
    let mut out = format!("-----BEGIN {kind}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or(""));
        out.push('\n');
    }
    out.push_str(&format!("-----END {kind}-----\n"));
    out
}

fn data() -> Value {
    let bundle = format!(
        "{}{}{}",
        pem_block("PRIVATE KEY", 1216, 1),
        pem_block("CERTIFICATE", 1100, 2),
        pem_block("CERTIFICATE", 900, 3)
    );
    let mut m = BTreeMap::new();
    m.insert("db_host", "db.internal.example.com".to_string());
    m.insert("db_user", "app".to_string());
    m.insert("db_pass", "p@ss w0rd/with:specials".to_string());
    m.insert("config", r#"{"port":5432,"name":"orders","features":["a","b","c"],"cpu":1.5,"nested":{"x":[1,2,3],"big":1234567}}"#.to_string());
    m.insert("api_key", "  ak_1234567890abcdef  ".to_string());
    m.insert("bundle", bundle);
    m.insert("ca", pem_block("CERTIFICATE", 800, 4));
    m.insert("mem", "512Mi".to_string());
    m.insert("redis_url", String::new());
    m.insert("smtp_user", "mailer".to_string());
    m.insert("smtp_pass", "hunter2".to_string());
    m.insert("token", "dG9rZW4tdmFsdWUtMTIzNDU2Nzg5MA==".to_string());
    for i in 0..8 {
        m.insert(
            [
                "env_a", "env_b", "env_c", "env_d", "env_e", "env_f", "env_g", "env_h",
            ][i],
            format!("value-{i}"),
        );
    }
    Value::from_string_map(m)
}

fn main() {
    let opts = ParseOptions::default();
    let d = data();
    // Parse time.
    let n_parse = 2000;
    let start = Instant::now();
    for _ in 0..n_parse {
        black_box(Template::parse("bench", black_box(TEMPLATE), &opts).ok());
    }
    let parse = start.elapsed() / n_parse;
    // Renders per second.
    let Ok(t) = Template::parse("bench", TEMPLATE, &opts) else {
        eprintln!("template does not parse");
        std::process::exit(1);
    };
    let out = match t.execute(&d) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("render failed: {e}");
            std::process::exit(1);
        }
    };
    let mut renders = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        for _ in 0..100 {
            black_box(t.execute(black_box(&d)).ok());
        }
        renders += 100;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "template: {} bytes, 20 keys in, {} bytes out",
        TEMPLATE.len(),
        out.len()
    );
    println!("parse:   {:>10.1} us per parse", parse.as_secs_f64() * 1e6);
    println!(
        "render:  {:>10.0} renders/s ({:.1} us per render)",
        renders as f64 / secs,
        secs * 1e6 / renders as f64
    );
}
