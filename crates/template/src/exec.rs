//! The executor: walks a parsed template with Go's evaluation rules.

use crate::error::{ErrorKind, TemplateError};
use crate::funcs::{self, Ctx, FnError, Func, P};
use crate::gofmt;
use crate::parse::{Arg, Command, Node, Pipe, ideal_constant};
use crate::value::{Elem, Value};
use crate::{Limits, MissingKey, Template};

/// Why a walk stopped early.
pub(crate) enum Flow {
    Break,
    Continue,
    Err(Box<TemplateError>),
}

type R<T> = Result<T, Flow>;

pub(crate) struct State<'a> {
    pub(crate) tmpl: &'a Template,
    pub(crate) name: String,
    pub(crate) out: Vec<u8>,
    vars: Vec<(String, Value)>,
    depth: usize,
    iterations: u64,
    pub(crate) ctx: Ctx,
}

impl<'a> State<'a> {
    pub(crate) fn new(tmpl: &'a Template, ctx: Ctx) -> Self {
        State {
            tmpl,
            name: tmpl.name.clone(),
            out: Vec::new(),
            vars: Vec::new(),
            depth: 0,
            iterations: 0,
            ctx,
        }
    }

    fn limits(&self) -> &Limits {
        &self.tmpl.opts.limits
    }

    fn err(&self, kind: ErrorKind, pos: usize, at: &str, msg: impl Into<String>) -> Flow {
        let (line, col) = self.tmpl.line_col(pos);
        let msg = msg.into();
        let full = if at.is_empty() {
            format!("executing {:?}: {msg}", self.name)
        } else {
            format!("executing {:?} at <{at}>: {msg}", self.name)
        };
        Flow::Err(Box::new(TemplateError::new(
            kind,
            &self.tmpl.name,
            line,
            col,
            full,
        )))
    }

    fn exec_err(&self, cmd: &Command, msg: impl Into<String>) -> Flow {
        self.err(ErrorKind::Exec, cmd.pos, &cmd.text, msg)
    }

    pub(crate) fn run(&mut self, nodes: &[Node], data: Value) -> Result<(), TemplateError> {
        self.vars.push(("$".into(), data.clone()));
        match self.walk_list(&data, nodes) {
            Ok(()) => Ok(()),
            Err(Flow::Err(e)) => Err(*e),
            Err(Flow::Break | Flow::Continue) => Ok(()),
        }
    }

    fn write(&mut self, b: &[u8], pos: usize) -> R<()> {
        if self.out.len() + b.len() > self.limits().max_output_bytes {
            return Err(self.err(
                ErrorKind::Limit,
                pos,
                "",
                format!(
                    "output exceeds the limit of {} bytes",
                    self.limits().max_output_bytes
                ),
            ));
        }
        self.out.extend_from_slice(b);
        Ok(())
    }

    fn walk_list(&mut self, dot: &Value, nodes: &[Node]) -> R<()> {
        for n in nodes {
            self.walk(dot, n)?;
        }
        Ok(())
    }

    fn walk(&mut self, dot: &Value, node: &Node) -> R<()> {
        match node {
            Node::Text(t) => self.write(t, 0),
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    let b = print_value(&v);
                    self.write(&b, pipe.pos)?;
                }
                Ok(())
            }
            Node::If {
                pipe,
                list,
                else_list,
            }
            | Node::With {
                pipe,
                list,
                else_list,
            } => {
                let mark = self.vars.len();
                let v = self.eval_pipeline(dot, pipe)?;
                let is_with = matches!(node, Node::With { .. });
                let r = if v.truth() {
                    if is_with {
                        self.walk_list(&v, list)
                    } else {
                        self.walk_list(dot, list)
                    }
                } else if let Some(e) = else_list {
                    self.walk_list(dot, e)
                } else {
                    Ok(())
                };
                self.vars.truncate(mark);
                r
            }
            Node::Range {
                pipe,
                list,
                else_list,
            } => {
                let mark = self.vars.len();
                let r = self.walk_range(dot, pipe, list, else_list.as_deref());
                self.vars.truncate(mark);
                r
            }
            Node::Template { pos, name, pipe } => {
                let Some(t) = self.tmpl.tree.templates.get(name).cloned() else {
                    return Err(self.err(
                        ErrorKind::Exec,
                        *pos,
                        &format!("template {name:?}"),
                        format!("no such template {name:?}"),
                    ));
                };
                let new_dot = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Value::Nil,
                };
                if self.depth >= self.limits().max_depth {
                    return Err(self.err(
                        ErrorKind::Limit,
                        *pos,
                        "",
                        format!(
                            "exceeded maximum template depth ({})",
                            self.limits().max_depth
                        ),
                    ));
                }
                self.depth += 1;
                let saved_vars =
                    std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
                let saved_name = std::mem::replace(&mut self.name, name.clone());
                let r = self.walk_list(&new_dot, &t);
                self.vars = saved_vars;
                self.name = saved_name;
                self.depth -= 1;
                match r {
                    Err(Flow::Break | Flow::Continue) => Ok(()),
                    other => other,
                }
            }
            Node::Break => Err(Flow::Break),
            Node::Continue => Err(Flow::Continue),
        }
    }

    fn tick(&mut self, pos: usize) -> R<()> {
        self.iterations += 1;
        if self.iterations > self.limits().max_iterations {
            return Err(self.err(
                ErrorKind::Limit,
                pos,
                "",
                format!(
                    "range iterations exceed the limit of {}",
                    self.limits().max_iterations
                ),
            ));
        }
        Ok(())
    }

    fn walk_range(
        &mut self,
        dot: &Value,
        pipe: &Pipe,
        list: &[Node],
        else_list: Option<&[Node]>,
    ) -> R<()> {
        // Evaluate without declaring: the declared variables take index and element.
        let bare = Pipe {
            pos: pipe.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: pipe.cmds.clone(),
        };
        let val = self.eval_pipeline(dot, &bare)?;
        let base = self.vars.len();
        if !pipe.is_assign {
            for d in &pipe.decl {
                self.vars.push((d.clone(), Value::Nil));
            }
        }
        let one = |st: &mut Self, index: Value, elem: Value| -> R<bool> {
            st.tick(pipe.pos)?;
            if pipe.is_assign {
                if pipe.decl.len() > 1 {
                    st.set_var(&pipe.decl[0], index);
                    st.set_var(&pipe.decl[1], elem.clone());
                } else if let Some(d) = pipe.decl.first() {
                    st.set_var(d, elem.clone());
                }
            } else if pipe.decl.len() > 1 {
                st.vars[base] = (pipe.decl[0].clone(), index);
                st.vars[base + 1] = (pipe.decl[1].clone(), elem.clone());
            } else if let Some(d) = pipe.decl.first() {
                st.vars[base] = (d.clone(), elem.clone());
            }
            let mark = st.vars.len();
            let r = st.walk_list(&elem, list);
            st.vars.truncate(mark);
            match r {
                Ok(()) | Err(Flow::Continue) => Ok(true),
                Err(Flow::Break) => Ok(false),
                Err(e) => Err(e),
            }
        };
        let mut empty = true;
        match &val {
            Value::List(items, _) => {
                for (i, it) in items.iter().enumerate() {
                    empty = false;
                    if !one(self, Value::Int(i as i64), it.clone())? {
                        break;
                    }
                }
            }
            Value::Map(m) => {
                for (k, v) in m.entries() {
                    empty = false;
                    if !one(self, Value::str(&k), v)? {
                        break;
                    }
                }
            }
            Value::Int(n) | Value::Int64(n) => {
                if pipe.decl.len() > 1 {
                    return Err(self.err(
                        ErrorKind::Exec,
                        pipe.pos,
                        "",
                        format!("can't use {n} to iterate over more than one variable"),
                    ));
                }
                for i in 0..(*n).max(0) {
                    empty = false;
                    let iv = if matches!(val, Value::Int(_)) {
                        Value::Int(i)
                    } else {
                        Value::Int64(i)
                    };
                    if !one(self, iv.clone(), iv)? {
                        break;
                    }
                }
            }
            Value::Nil => {}
            other => {
                let at = pipe.cmds.last().map(|c| c.text.clone()).unwrap_or_default();
                return Err(self.err(
                    ErrorKind::Exec,
                    pipe.pos,
                    &at,
                    format!(
                        "range can't iterate over {}",
                        String::from_utf8_lossy(&other.to_go_string())
                    ),
                ));
            }
        }
        if empty && let Some(e) = else_list {
            self.walk_list(dot, e)?;
        }
        Ok(())
    }

    fn set_var(&mut self, name: &str, v: Value) {
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
        }
    }

    fn var_value(&self, name: &str) -> Value {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map_or(Value::Nil, |(_, v)| v.clone())
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> R<Value> {
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let v = value.unwrap_or(Value::Nil);
        for d in &pipe.decl {
            if pipe.is_assign {
                self.set_var(d, v.clone());
            } else {
                self.vars.push((d.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn not_a_function(&self, cmd: &Command, what: &str, final_: &Option<Value>) -> R<()> {
        if cmd.args.len() > 1 || final_.is_some() {
            return Err(self.exec_err(cmd, format!("can't give argument to non-function {what}")));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &Command, final_: Option<Value>) -> R<Value> {
        let Some(first) = cmd.args.first() else {
            return Err(self.exec_err(cmd, "empty command"));
        };
        match first {
            Arg::Field(fields) => self.eval_field_chain(
                dot.clone(),
                fields,
                cmd,
                cmd.args.len() > 1 || final_.is_some(),
            ),
            Arg::Variable(name, fields) => {
                let v = self.var_value(name);
                if fields.is_empty() {
                    self.not_a_function(cmd, name, &final_)?;
                    return Ok(v);
                }
                self.eval_field_chain(v, fields, cmd, cmd.args.len() > 1 || final_.is_some())
            }
            Arg::Pipe(p, fields) => {
                if fields.is_empty() {
                    self.not_a_function(cmd, "(pipeline)", &final_)?;
                }
                let v = self.eval_pipeline(dot, p)?;
                if fields.is_empty() {
                    return Ok(v);
                }
                self.eval_field_chain(v, fields, cmd, cmd.args.len() > 1 || final_.is_some())
            }
            Arg::Ident(name) => self.eval_function(dot, name, cmd, final_),
            Arg::Nil => Err(self.exec_err(cmd, "nil is not a command")),
            Arg::Dot => {
                self.not_a_function(cmd, ".", &final_)?;
                Ok(dot.clone())
            }
            Arg::Bool(b) => {
                self.not_a_function(cmd, &b.to_string(), &final_)?;
                Ok(Value::Bool(*b))
            }
            Arg::Str(s) => {
                self.not_a_function(cmd, &cmd.text, &final_)?;
                Ok(Value::Str(s.clone()))
            }
            Arg::Number { int, float, text } => {
                self.not_a_function(cmd, text, &final_)?;
                ideal_constant(*int, *float, text).map_err(|m| self.exec_err(cmd, m))
            }
        }
    }

    fn eval_field_chain(
        &mut self,
        mut receiver: Value,
        fields: &[String],
        cmd: &Command,
        has_args: bool,
    ) -> R<Value> {
        let n = fields.len();
        for (i, f) in fields.iter().enumerate() {
            let last = i + 1 == n;
            if last && has_args && matches!(receiver, Value::Map(_)) {
                return Err(self.exec_err(cmd, format!("{f} is not a method but has arguments")));
            }
            receiver = self.eval_field(receiver, f, cmd)?;
        }
        Ok(receiver)
    }

    fn eval_field(&self, receiver: Value, name: &str, cmd: &Command) -> R<Value> {
        match receiver {
            Value::Map(m) => match m.get(name) {
                Some(v) => Ok(v),
                None => match self.tmpl.opts.missing_key {
                    MissingKey::Error => {
                        Err(self.exec_err(cmd, format!("map has no entry for key {name:?}")))
                    }
                    MissingKey::Invalid => Ok(Value::Nil),
                    MissingKey::Zero => Ok(if m.elem == Elem::Str {
                        Value::str("")
                    } else {
                        Value::Nil
                    }),
                },
            },
            Value::Cert { cert, key } if name == "Cert" || name == "Key" => {
                Ok(Value::Str(if name == "Cert" { cert } else { key }))
            }
            Value::Semver(v) => v.field(name).ok_or_else(|| {
                self.exec_err(
                    cmd,
                    format!("can't evaluate field {name} in type *semver.Version"),
                )
            }),
            Value::Nil => {
                Err(self.exec_err(cmd, format!("nil pointer evaluating interface {{}}.{name}")))
            }
            other => Err(self.exec_err(
                cmd,
                format!("can't evaluate field {name} in type {}", other.type_name()),
            )),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        name: &str,
        cmd: &Command,
        final_: Option<Value>,
    ) -> R<Value> {
        self.eval_function_args(dot, name, &cmd.args[1..], cmd, final_)
    }

    fn eval_function_args(
        &mut self,
        dot: &Value,
        name: &str,
        args: &[Arg],
        cmd: &Command,
        final_: Option<Value>,
    ) -> R<Value> {
        let Some(f) = funcs::lookup(name) else {
            return Err(self.exec_err(cmd, format!("{name:?} is not a defined function")));
        };
        let num_in = args.len() + usize::from(final_.is_some());
        let fixed = f.params.len();
        if f.variadic.is_some() {
            if num_in < fixed {
                return Err(self.exec_err(
                    cmd,
                    format!("wrong number of args for {name}: want at least {fixed} got {num_in}"),
                ));
            }
        } else if num_in != fixed {
            return Err(self.exec_err(
                cmd,
                format!("wrong number of args for {name}: want {fixed} got {num_in}"),
            ));
        }
        if name == "and" || name == "or" {
            let want = name == "or";
            let mut v = Value::Nil;
            for a in args {
                v = self.eval_arg(dot, P::Val, a, cmd)?;
                if v.truth() == want {
                    return Ok(v);
                }
            }
            if let Some(fv) = final_ {
                v = fv;
            }
            return Ok(v);
        }
        let mut vals = Vec::with_capacity(num_in);
        for (i, a) in args.iter().enumerate() {
            let p = if i < fixed {
                f.params[i]
            } else {
                f.variadic.unwrap_or(P::Any)
            };
            vals.push(self.eval_arg(dot, p, a, cmd)?);
        }
        if let Some(fv) = final_ {
            let i = vals.len();
            let p = if i < fixed {
                f.params[i]
            } else {
                f.variadic.unwrap_or(P::Any)
            };
            let fv = self.validate(fv, p, cmd)?;
            vals.push(fv);
        }
        self.call(name, f, vals, cmd)
    }

    fn call(&mut self, name: &str, f: &Func, vals: Vec<Value>, cmd: &Command) -> R<Value> {
        match (f.imp)(&mut self.ctx, vals) {
            Ok(v) => {
                let size = match &v {
                    Value::Str(s) => s.len(),
                    Value::List(l, _) => l.len(),
                    _ => 0,
                };
                if size > self.limits().max_output_bytes {
                    return Err(self.err(
                        ErrorKind::Limit,
                        cmd.pos,
                        &cmd.text,
                        format!(
                            "result of {name} exceeds the limit of {} bytes",
                            self.limits().max_output_bytes
                        ),
                    ));
                }
                Ok(v)
            }
            Err(FnError::Msg(m)) => Err(self.exec_err(cmd, format!("error calling {name}: {m}"))),
            Err(FnError::Plain(m)) => Err(self.exec_err(cmd, m)),
            Err(FnError::Limit(m)) => Err(self.err(
                ErrorKind::Limit,
                cmd.pos,
                &cmd.text,
                format!("error calling {name}: {m}"),
            )),
        }
    }

    fn eval_arg(&mut self, dot: &Value, p: P, arg: &Arg, cmd: &Command) -> R<Value> {
        match arg {
            Arg::Dot => self.validate(dot.clone(), p, cmd),
            Arg::Nil => match p {
                P::Any | P::Dict => Ok(Value::Nil),
                _ => Err(self.exec_err(cmd, format!("cannot assign nil to {}", p.go_name()))),
            },
            Arg::Field(fields) => {
                let v = self.eval_field_chain(dot.clone(), fields, cmd, false)?;
                self.validate(v, p, cmd)
            }
            Arg::Variable(name, fields) => {
                let v = self.var_value(name);
                let v = if fields.is_empty() {
                    v
                } else {
                    self.eval_field_chain(v, fields, cmd, false)?
                };
                self.validate(v, p, cmd)
            }
            Arg::Pipe(pipe, fields) => {
                let mark = self.vars.len();
                let v = self.eval_pipeline(dot, pipe);
                self.vars.truncate(mark);
                let v = v?;
                let v = if fields.is_empty() {
                    v
                } else {
                    self.eval_field_chain(v, fields, cmd, false)?
                };
                self.validate(v, p, cmd)
            }
            Arg::Ident(name) => {
                let v = self.eval_function_args(dot, name, &[], cmd, None)?;
                self.validate(v, p, cmd)
            }
            Arg::Bool(b) => match p {
                P::Bool | P::Any | P::Val => Ok(Value::Bool(*b)),
                _ => Err(self.exec_err(cmd, format!("expected {}; found {b}", p.expect_word()))),
            },
            Arg::Str(s) => match p {
                P::Str | P::Any | P::Val => Ok(Value::Str(s.clone())),
                _ => Err(self.exec_err(
                    cmd,
                    format!(
                        "expected {}; found {:?}",
                        p.expect_word(),
                        String::from_utf8_lossy(s)
                    ),
                )),
            },
            Arg::Number { int, float, text } => match p {
                P::Int => match int {
                    Some(i)
                        if !text.contains(['.', 'e', 'E'])
                            || float.is_some_and(|f| f.fract() == 0.0) =>
                    {
                        Ok(if p == P::Int {
                            Value::Int(*i)
                        } else {
                            Value::Int64(*i)
                        })
                    }
                    _ => Err(self.exec_err(cmd, format!("expected integer; found {text}"))),
                },
                P::Float => match float {
                    Some(f) => Ok(Value::Float(*f)),
                    None => Err(self.exec_err(cmd, format!("expected float; found {text}"))),
                },
                P::Any | P::Val => {
                    ideal_constant(*int, *float, text).map_err(|m| self.exec_err(cmd, m))
                }
                _ => Err(self.exec_err(cmd, format!("expected {}; found {text}", p.expect_word()))),
            },
        }
    }

    fn validate(&self, v: Value, p: P, cmd: &Command) -> R<Value> {
        let ok = match (&v, p) {
            (_, P::Any | P::Val) => true,
            (Value::Nil, P::Dict) => true,
            (Value::Nil, _) => {
                return Err(self.exec_err(cmd, format!("invalid value; expected {}", p.go_name())));
            }
            (Value::Str(_), P::Str)
            | (Value::Int(_), P::Int)
            | (Value::Float(_), P::Float)
            | (Value::Bool(_), P::Bool) => true,
            (Value::Map(m), P::Dict) => m.elem == Elem::Any,
            (Value::Time(_), P::Time) | (Value::Cert { .. }, P::Cert) => true,
            _ => false,
        };
        if ok {
            Ok(v)
        } else {
            Err(self.exec_err(
                cmd,
                format!(
                    "wrong type for value; expected {}; got {}",
                    p.go_name(),
                    v.type_name()
                ),
            ))
        }
    }
}

/// How the template writes a pipeline's value: `<no value>` for nil, else `fmt.Print`.
pub(crate) fn print_value(v: &Value) -> Vec<u8> {
    match v {
        Value::Nil => b"<no value>".to_vec(),
        Value::Str(s) => s.to_vec(),
        other => gofmt::sprint(std::slice::from_ref(other)),
    }
}
