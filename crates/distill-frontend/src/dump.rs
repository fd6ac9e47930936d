//! BuildKit's `Node.Dump()` for a parsed Dockerfile: one `(keyword ["--flag" ...] "arg" ...)`
//! line per instruction, the keyword lowercased, every string quoted as Go's `strconv.Quote`
//! quotes it, ONBUILD nesting its instruction as `(onbuild (run "x"))`. Here-document bodies
//! are not part of the dump, as in BuildKit. This is a debugging and comparison format: it
//! must stay byte-for-byte identical to BuildKit's, never "improved".

use distill_golang::strconv;

use crate::syntax::{Dockerfile, Node};

/// One line per top-level instruction, each ending with `\n`.
pub(crate) fn dump(dockerfile: &Dockerfile) -> String {
    let mut out = String::new();
    for node in &dockerfile.nodes {
        out.push('(');
        push_node(&mut out, node);
        out.push_str(")\n");
    }
    out
}

/// Appends one node's dump. Go trims the result with `strings.TrimSpace`; only an empty
/// keyword (a line holding nothing but a continuation character) leaves space to trim.
fn push_node(out: &mut String, node: &Node) {
    let mut text = String::with_capacity(node.original.len() + 16);
    text.push_str(&node.keyword);
    if !node.flags.is_empty() {
        text.push_str(" [");
        for (i, flag) in node.flags.iter().enumerate() {
            if i > 0 {
                text.push(' ');
            }
            strconv::quote_into(&mut text, &flag.value);
        }
        text.push(']');
    }
    if let Some(child) = &node.onbuild {
        text.push_str(" (");
        push_node(&mut text, child);
        text.push(')');
    }
    for arg in &node.args {
        text.push(' ');
        strconv::quote_into(&mut text, &arg.value);
    }
    out.push_str(text.trim());
}
