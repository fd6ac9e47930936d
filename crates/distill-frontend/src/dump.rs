//! BuildKit's `Node.Dump()` for a parsed Dockerfile: one `(keyword ["--flag" ...] "arg" ...)`
//! line per instruction, the keyword lowercased, every string quoted as Go's `strconv.Quote`
//! quotes it, ONBUILD nesting its instruction as `(onbuild (run "x"))`. Here-document bodies
//! are not part of the dump, as in BuildKit. This is a debugging and comparison format: it
//! must stay byte-for-byte identical to BuildKit's, never "improved".

use crate::golang;
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
            golang::quote_into(&mut text, &flag.value);
        }
        text.push(']');
    }
    if let Some(child) = &node.onbuild {
        text.push_str(" (");
        push_node(&mut text, child);
        text.push(')');
    }
    for (i, arg) in node.args.iter().enumerate() {
        text.push(' ');
        match healthcheck_type_bytes(node, i) {
            Some(bytes) => golang::quote_bytes_into(&mut text, bytes),
            None => golang::quote_into(&mut text, &arg.value),
        }
    }
    out.push_str(text.trim());
}

/// BuildKit finds the end of HEALTHCHECK's type word byte by byte, taking the UTF-8
/// continuation bytes 0x85 and 0xA0 for spaces, so its type can stop inside a character
/// (`CMD\u{a0}curl` gives the type `CMD\xc2`). The parser keeps that character whole in the
/// type; here the type is cut where BuildKit cut it, so the dump shows the same bytes.
fn healthcheck_type_bytes(node: &Node, index: usize) -> Option<&[u8]> {
    if index != 0 || node.keyword != "healthcheck" {
        return None;
    }
    let bytes = node.args.first()?.value.as_bytes();
    let cut = bytes.iter().position(|&b| golang::is_space_byte(b))?;
    Some(&bytes[..cut])
}
