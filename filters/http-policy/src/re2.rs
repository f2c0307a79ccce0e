//! Cilium's regexes read as RE2 reads them. Cilium validates `path` and `host` with Go's
//! `regexp` and Envoy matches them with RE2: both take `\d`, `\w`, `\s` and `\b` as ASCII
//! (`[0-9]`, `[0-9A-Za-z_]`, `[\t\n\f\r ]`, an ASCII word boundary). Rust's `regex` takes them as
//! Unicode classes, so a rule written for `/users/\d+` would also allow `/users/١٢٣`. The
//! patterns are rewritten before they are compiled; everything else (Unicode `.`, `\pL`, `(?i)`
//! folding) already agrees.

use std::borrow::Cow;

use regex_syntax::ast::{self, Ast, ClassPerlKind, ClassSetItem};

/// `pattern` with its Perl classes and word boundaries spelled out in ASCII. A pattern that
/// does not parse is returned as it is: compiling it reports the error.
pub fn ascii_perl_classes(pattern: &str) -> Cow<'_, str> {
    let Ok(parsed) = ast::parse::Parser::new().parse(pattern) else {
        return Cow::Borrowed(pattern);
    };
    let Ok(mut edits) = ast::visit(&parsed, Edits(Vec::new())) else {
        return Cow::Borrowed(pattern);
    };
    if edits.is_empty() {
        return Cow::Borrowed(pattern);
    }
    edits.sort_by_key(|e| e.0);
    let mut out = String::with_capacity(pattern.len() + 16 * edits.len());
    let mut at = 0;
    for (start, end, with) in edits {
        out.push_str(&pattern[at..start]);
        out.push_str(with);
        at = end;
    }
    out.push_str(&pattern[at..]);
    Cow::Owned(out)
}

/// The spans to replace, with their replacement.
struct Edits(Vec<(usize, usize, &'static str)>);

/// A class as a bracketed class: `\d` → `[0-9]`, `\D` → `[^0-9]`. Inside brackets too, as a
/// nested class: `[\w-x]` → `[[0-9A-Za-z_]-x]`, where the `-` stays a literal (as Go reads
/// `[\w-x]`), which bare members (`[0-9A-Za-z_-x]`) would turn into a range. The space is
/// `\x20`, which `(?x)` does not drop.
fn class(kind: &ClassPerlKind, negated: bool) -> &'static str {
    match (kind, negated) {
        (ClassPerlKind::Digit, false) => "[0-9]",
        (ClassPerlKind::Digit, true) => "[^0-9]",
        (ClassPerlKind::Word, false) => "[0-9A-Za-z_]",
        (ClassPerlKind::Word, true) => "[^0-9A-Za-z_]",
        (ClassPerlKind::Space, false) => r"[\t\n\x0C\r\x20]",
        (ClassPerlKind::Space, true) => r"[^\t\n\x0C\r\x20]",
    }
}

impl ast::Visitor for Edits {
    type Output = Vec<(usize, usize, &'static str)>;
    type Err = ();

    fn finish(self) -> Result<Self::Output, ()> {
        Ok(self.0)
    }

    fn visit_pre(&mut self, a: &Ast) -> Result<(), ()> {
        let (span, with) = match a {
            Ast::ClassPerl(c) => (&c.span, class(&c.kind, c.negated)),
            Ast::Assertion(x) => match x.kind {
                ast::AssertionKind::WordBoundary => (&x.span, r"(?-u:\b)"),
                ast::AssertionKind::NotWordBoundary => (&x.span, r"(?-u:\B)"),
                _ => return Ok(()),
            },
            _ => return Ok(()),
        };
        self.0.push((span.start.offset, span.end.offset, with));
        Ok(())
    }

    fn visit_class_set_item_pre(&mut self, item: &ClassSetItem) -> Result<(), ()> {
        if let ClassSetItem::Perl(c) = item {
            // Inside brackets: a nested class (`[a\D]` → `[a[^0-9]]`).
            self.0.push((
                c.span.start.offset,
                c.span.end.offset,
                class(&c.kind, c.negated),
            ));
        }
        Ok(())
    }
}
