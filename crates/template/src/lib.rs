//! Go `text/template`-compatible rendering with the External Secrets Operator's function set.
//!
//! This crate owns template parsing and execution for ExternalSecret `target.template`,
//! `templateFrom` and `rewrite.transform`. It is pure: no kube types, no I/O, no environment,
//! files, DNS or network. Callers pass the secret data in and get bytes out.
//!
//! # Engine choice
//!
//! The engine is written here rather than wrapping the `gotmpl` crate (0.6.1). `gotmpl`
//! passes most of Go's behaviour, but three differences cannot be fixed from outside it:
//! its strings are `Arc<str>` (UTF-8 only), while ESO's data are raw bytes (PKCS#12
//! archives, DER keys, `b64dec` output); its `Value` prints floats with Rust's `Display`
//! (`1234567` instead of Go's `1.234567e+06`), also inside lists and maps; and it does not
//! reject undefined functions or variables at parse time. It also has no output-size bound.
//! Owning the engine also lets errors carry line, column and an [`ErrorKind`].
//!
//! # Use
//!
//! ```
//! use std::collections::BTreeMap;
//! use eso_template::{ParseOptions, Template, Value};
//!
//! let t = Template::parse("tls.crt", "{{ .user | upper }}:{{ .pass | b64enc }}", &ParseOptions::default())?;
//! let data = Value::from_string_map(BTreeMap::from([("user", "ann"), ("pass", "s3cret")]));
//! assert_eq!(t.execute(&data)?, b"ANN:czNjcmV0");
//! # Ok::<(), eso_template::TemplateError>(())
//! ```
//!
//! A parsed [`Template`] is immutable, `Send + Sync` and cheap to share: cache it per
//! ExternalSecret generation and execute it on every refresh.
//!
//! # Data and binary values
//!
//! ESO hands templates a Go `map[string]string`. [`Value::from_string_map`] builds the same
//! (`index` on a missing key gives `""`, a missing `.key` is an error as with ESO's
//! `missingkey=error`). Strings are byte strings: a value that is not UTF-8 is passed through
//! untouched, and [`Template::execute`] returns bytes (`Vec<u8>`), exactly what goes into the
//! Secret. Functions that work on characters (`upper`, `title`, ...) treat invalid UTF-8 as
//! U+FFFD, like Go's `strings` package does for those functions.
//!
//! # Functions
//!
//! Go's builtins, the sprig functions ESO registers (without `env`, `expandenv`,
//! `getHostByName`) and ESO's helpers. [`function_names`] lists what is registered. A call to
//! a function that is not registered fails at parse time with `function "X" not defined`.
//!
//! `semver` and `semverCompare` follow Masterminds/semver v3 (see [`SemVer`]): the
//! constraint language (`=`, `!=`, `>`, `<`, `>=`, `<=`, `~`, `^`, `x`/`*` wildcards, hyphen
//! ranges, AND by space or comma, OR by `||`) and its prerelease rule are implemented here,
//! since the `semver` crate's Cargo semantics differ. A version prints in canonical form
//! (`semver "v1.2"` prints `1.2.0`) and exposes `.Major`, `.Minor`, `.Patch`,
//! `.Prerelease`, `.Metadata`, `.Original` and `.String`.
//!
//! `pemToPkcs12`, `fullPemToPkcs12`, `pemTruststoreToPKCS12` and their `Pass` forms write
//! what go-pkcs12's `Modern` encoder writes (byte for byte given the same random salts and
//! IVs): PBES2 with PBKDF2-HMAC-SHA256 (2048 iterations) and AES-256-CBC, and a SHA-256 MAC.
//! That is OpenSSL 3's default too, so `openssl pkcs12` reads the archives without
//! `-legacy`. The result is base64, as upstream returns it.

//! # Dates
//!
//! Times are Go `time.Time` values ([`GoTime`]): `date` and friends take Go reference-time
//! layouts (`"2006-01-02 15:04:05"`), `toDate` parses with Go's `time.Parse` rules, and
//! durations print as Go's `Duration.String()`. Named zones (`dateInZone`, `htmlDateInZone`)
//! come from the IANA database bundled into the binary (jiff's `tzdb-bundle-always`); nothing
//! is read from `/usr/share/zoneinfo` or the environment. Go's `Local` is UTC, as in ESO's
//! container image (no `/etc/localtime`, no `TZ`). [`ExecOptions::now`] fixes the clock.
//! Differences: `now` prints Go's monotonic suffix `m=+...` counted from the first use in
//! this process rather than from process start (and none with a fixed clock); method calls on
//! times (`(now).Year`) are not available.
//!
//! # Keys and certificates
//!
//! `genPrivateKey` makes RSA 4096, ECDSA P-256 and Ed25519 keys in sprig's PEM block types;
//! `"dsa"` is an error (DSA is not implemented). Certificates (`genCA*`, `genSelfSignedCert*`,
//! `genSignedCert*`) follow sprig's template and Go's `x509.CreateCertificate` encoding; keys
//! passed in may be RSA, ECDSA P-256 or Ed25519 (PKCS#1, SEC 1 or PKCS#8 PEM); other curves
//! and DSA keys give an error. The CA's subject key identifier is the SHA-1 of its public key
//! (Go 1.25 and later truncate SHA-256 instead; either is valid). `bcrypt`/`htpasswd` use
//! `$2a$` with cost 10, as Go's `bcrypt.DefaultCost`.
//!
//! # Differences from Go that remain
//!
//! - `keys`, `values` and `pluck` return map entries in sorted key order; Go's order is
//!   random, so any order is Go-conformant and sorted is the reproducible choice.
//! - Parse errors carry a column as well as the line (Go prints only the line).
//! - `toYaml` emits YAML with the same layout rules as `sigs.k8s.io/yaml` for the common
//!   cases (maps, lists, plain and quoted scalars, literal blocks); unusual strings may be
//!   quoted differently.
//! - `fromYaml` and `mustFromJson` error texts differ from Go's; `fromYaml` reads YAML
//!   through `serde-saphyr`, not go-yaml v2 (common documents read the same, including
//!   YAML 1.1 booleans such as `y`).
//! - `hexdec` returns an error for invalid input (its upstream source was not available to
//!   check whether it returns the error text instead, as `b64dec` does).
//! - `index` on a string yields an `int`, where Go yields a `uint8` (same printed value;
//!   `%T`/`typeOf` differ).
//! - Random functions (`randAlphaNum`, `uuidv4`, `shuffle`, `randInt`, `randBytes`,
//!   `encryptAES` IVs) read the operating system's random source, or a fixed seed from
//!   [`ExecOptions::seed`] for reproducible tests.
//! - Method calls with arguments do not exist. Only a semver version has methods, and only
//!   its argument-less ones are available (`.Major`, `.Prerelease`, ...; not `.Compare`,
//!   `.LessThan`, `.IncMajor`, ...); `.Major`, `.Minor` and `.Patch` are `int64` values where
//!   Go has `uint64` (same printed value).
//! - `printf` does not support explicit argument indexes (`%[2]d`).
//!
//! # Limits
//!
//! [`Limits`] bounds the output size, the depth of nested `template` calls and the total
//! number of `range` iterations; functions that build large values (`repeat`, `until`, ...)
//! check the same bounds before allocating. Hitting one is an [`ErrorKind::Limit`] error.
//!
//! # Fuzzing
//!
//! `cargo test -p eso-template --test fuzz` runs a proptest suite that feeds arbitrary text
//! to the parser and executor; set `PROPTEST_CASES=100000` for a longer run.

mod error;
mod exec;
mod funcs;
mod gofmt;
mod gotime;
mod parse;
mod value;

use std::sync::Arc;

pub use error::{ErrorKind, TemplateError};
pub use funcs::SemVer;
pub use gotime::GoTime;
pub use value::{Elem, Map, Value};

/// What a missing map key does (Go's `missingkey` option).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissingKey {
    /// `missingkey=error`: an execution error. ESO uses this.
    #[default]
    Error,
    /// `missingkey=default`/`invalid`: the value is nil and prints `<no value>`.
    Invalid,
    /// `missingkey=zero`: the zero value of the map's element type.
    Zero,
}

/// Resource bounds for one execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum bytes written by one execution, and maximum size of any one function result.
    pub max_output_bytes: usize,
    /// Maximum depth of nested `{{template}}` calls (recursion).
    pub max_depth: usize,
    /// Maximum number of `range` iterations in one execution, and of items in generated lists.
    pub max_iterations: u64,
}

impl Default for Limits {
    /// 4 MiB of output (four times the 1 MiB Secret size limit), depth 100, one million
    /// iterations.
    fn default() -> Self {
        Limits {
            max_output_bytes: 4 << 20,
            max_depth: 100,
            max_iterations: 1_000_000,
        }
    }
}

/// Options fixed at parse time.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct ParseOptions {
    /// Left delimiter, `{{` by default (ESO's `--template-left-delimiter`).
    pub left_delim: String,
    /// Right delimiter, `}}` by default (ESO's `--template-right-delimiter`).
    pub right_delim: String,
    /// Missing-key behaviour; ESO uses [`MissingKey::Error`].
    pub missing_key: MissingKey,
    /// Execution bounds.
    pub limits: Limits,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            left_delim: "{{".into(),
            right_delim: "}}".into(),
            missing_key: MissingKey::Error,
            limits: Limits::default(),
        }
    }
}

impl ParseOptions {
    /// Sets the delimiters; empty strings mean the defaults, as in Go's `Delims`.
    pub fn delims(mut self, left: &str, right: &str) -> Self {
        self.left_delim = if left.is_empty() {
            "{{".into()
        } else {
            left.into()
        };
        self.right_delim = if right.is_empty() {
            "}}".into()
        } else {
            right.into()
        };
        self
    }

    /// Sets the missing-key behaviour.
    pub fn missing_key(mut self, m: MissingKey) -> Self {
        self.missing_key = m;
        self
    }

    /// Sets the execution bounds.
    pub fn limits(mut self, l: Limits) -> Self {
        self.limits = l;
        self
    }
}

/// Inputs of one execution that are not data: the clock and the randomness source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct ExecOptions {
    /// Fixed seed for random functions (`randAlphaNum`, `uuidv4`, `shuffle`, ...), for
    /// reproducible output in tests. `None` uses the operating system's random source.
    pub seed: Option<u64>,
    /// Fixed clock for `now`, `ago`, `durationRound` of a time and the validity of generated
    /// certificates, for reproducible output in tests. `None` reads the system clock.
    pub now: Option<std::time::SystemTime>,
}

impl ExecOptions {
    /// Sets the random seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Fixes the clock.
    pub fn now(mut self, now: std::time::SystemTime) -> Self {
        self.now = Some(now);
        self
    }
}

/// A parsed template, with every `define`d and `block` sub-template from its text.
#[derive(Clone, Debug)]
pub struct Template {
    name: String,
    source: Arc<str>,
    tree: parse::Tree,
    opts: ParseOptions,
}

impl Template {
    /// Parses `text` as a template called `name`.
    ///
    /// # Errors
    /// [`ErrorKind::Parse`] for syntax errors, undefined functions or variables, and
    /// `break`/`continue` outside `range`.
    pub fn parse(name: &str, text: &str, opts: &ParseOptions) -> Result<Template, TemplateError> {
        let is_func = |n: &str| funcs::lookup(n).is_some();
        match parse::parse(name, text, &opts.left_delim, &opts.right_delim, &is_func) {
            Ok(tree) => Ok(Template {
                name: name.to_string(),
                source: Arc::from(text),
                tree,
                opts: opts.clone(),
            }),
            Err(e) => {
                let src = Template {
                    name: name.to_string(),
                    source: Arc::from(text),
                    tree: parse::Tree {
                        templates: Default::default(),
                    },
                    opts: opts.clone(),
                };
                let (line, col) = src.line_col(e.pos);
                Err(TemplateError::new(ErrorKind::Parse, name, line, col, e.msg))
            }
        }
    }

    /// Executes the template with `data` as dot (`.`) and `$`.
    ///
    /// # Errors
    /// [`ErrorKind::Exec`] for execution errors, [`ErrorKind::Limit`] when a bound is hit.
    pub fn execute(&self, data: &Value) -> Result<Vec<u8>, TemplateError> {
        self.execute_with(data, &ExecOptions::default())
    }

    /// Executes with explicit [`ExecOptions`].
    ///
    /// # Errors
    /// As [`Template::execute`].
    pub fn execute_with(&self, data: &Value, opts: &ExecOptions) -> Result<Vec<u8>, TemplateError> {
        self.execute_template(&self.name, data, opts)
    }

    /// Executes the sub-template `name` (a `define` in this text).
    ///
    /// # Errors
    /// As [`Template::execute`]; [`ErrorKind::Exec`] when there is no such template.
    pub fn execute_template(
        &self,
        name: &str,
        data: &Value,
        opts: &ExecOptions,
    ) -> Result<Vec<u8>, TemplateError> {
        let Some(body) = self.tree.templates.get(name).cloned() else {
            return Err(TemplateError::new(
                ErrorKind::Exec,
                &self.name,
                1,
                1,
                format!(
                    "no template {name:?} associated with template {:?}",
                    self.name
                ),
            ));
        };
        let ctx = funcs::Ctx {
            rng: match opts.seed {
                Some(s) => funcs::Rng::Seeded(s),
                None => funcs::Rng::Os,
            },
            now: opts.now,
            max_bytes: self.opts.limits.max_output_bytes,
            max_items: self.opts.limits.max_iterations,
        };
        let mut st = exec::State::new(self, ctx);
        st.name = name.to_string();
        st.run(&body, data.clone())?;
        Ok(st.out)
    }

    /// Convenience: executes and returns the output as UTF-8 text.
    ///
    /// # Errors
    /// As [`Template::execute`], plus [`ErrorKind::Exec`] when the output is not UTF-8.
    pub fn execute_to_string(&self, data: &Value) -> Result<String, TemplateError> {
        let out = self.execute(data)?;
        String::from_utf8(out).map_err(|_| {
            TemplateError::new(
                ErrorKind::Exec,
                &self.name,
                1,
                1,
                "output is not valid UTF-8".into(),
            )
        })
    }

    /// The template's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Names of all templates defined in this text (the main one included), sorted.
    #[must_use]
    pub fn template_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.tree.templates.keys().cloned().collect();
        v.sort();
        v
    }

    pub(crate) fn line_col(&self, pos: usize) -> (usize, usize) {
        let pos = pos.min(self.source.len());
        let before = &self.source.as_bytes()[..pos];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let col = pos
            - before
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        (line, col)
    }
}

/// Names of every function a template can call, sorted.
#[must_use]
pub fn function_names() -> Vec<&'static str> {
    funcs::names()
}
