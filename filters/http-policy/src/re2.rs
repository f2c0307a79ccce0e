//! Cilium's regexes read as RE2 reads them. Cilium validates `path` and `host` with Go's
//! `regexp` and Envoy matches them with RE2. Rust's `regex` differs from both in two ways, and
//! [`from_re2`] rewrites a pattern for both before it is compiled:
//! - syntax ([`go_syntax`]): Go takes as literals some characters that Rust's parser takes as
//!   operators or refuses: a `-` after a class in brackets (`[\w-_]`), a `[` in brackets, `&&` and
//!   `~~` in brackets (Rust's set operators), a `{` that starts no repetition (`/users/{id}`),
//!   and `\Q…\E` quoting;
//! - meaning ([`ascii_perl_classes`]): Go and RE2 take `\d`, `\w`, `\s` and `\b` as ASCII
//!   (`[0-9]`, `[0-9A-Za-z_]`, `[\t\n\f\r ]`, an ASCII word boundary), Rust as Unicode classes,
//!   so a rule written for `/users/\d+` would also allow `/users/١٢٣`.
//!
//! Everything else (Unicode `.`, `\pL`, `(?i)` folding) already agrees.

use std::borrow::Cow;

use regex_syntax::ast::{self, Ast, ClassPerlKind, ClassSetItem};

/// `pattern` (Go / RE2 syntax) as Rust's `regex` must read it to mean what RE2 means.
pub fn from_re2(pattern: &str) -> Cow<'_, str> {
    match go_syntax(pattern) {
        Cow::Borrowed(p) => ascii_perl_classes(p),
        Cow::Owned(p) => Cow::Owned(ascii_perl_classes(&p).into_owned()),
    }
}

/// `pattern` with the characters Go's `regexp` reads as literals escaped where Rust's parser
/// would read them otherwise (see the module docs), following Go's parser (`regexp/syntax`
/// with Perl flags). Not every pattern Go refuses is refused here (`a{1001}`, `a**`).
pub fn go_syntax(pattern: &str) -> Cow<'_, str> {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        match c {
            '\\' if rest.starts_with("\\Q") => {
                // `\Q…\E` (or to the end): the text between as literals.
                let quoted = &rest[2..];
                let (text, after) = match quoted.find("\\E") {
                    Some(end) => (&quoted[..end], &quoted[end + 2..]),
                    None => (quoted, ""),
                };
                out.push_str(&regex_syntax::escape(text));
                rest = after;
            }
            // Go: an escaped `<` or `>` is that character; Rust: a word-boundary assertion.
            '\\' if rest.starts_with("\\<") || rest.starts_with("\\>") => {
                out.push_str(&rest[1..2]);
                rest = &rest[2..];
            }
            '\\' => {
                let n = escape_len(rest);
                out.push_str(&rest[..n]);
                rest = &rest[n..];
            }
            '[' => rest = bracket(rest, &mut out),
            '{' => {
                let n = repetition_len(rest);
                if n == 0 {
                    out.push_str("\\{");
                    rest = &rest[1..];
                } else {
                    out.push_str(&rest[..n]);
                    rest = &rest[n..];
                }
            }
            _ => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    if out == pattern {
        Cow::Borrowed(pattern)
    } else {
        Cow::Owned(out)
    }
}

/// The length of the escape at the start of `s` (a `\`): the escaped character, and with it
/// the braces of `\x{…}`, `\p{…}`, `\P{…}` (so their `{` is not taken for a repetition) or the
/// one-letter name of `\pL`.
fn escape_len(s: &str) -> usize {
    let Some(c) = s[1..].chars().next() else {
        return 1;
    };
    let n = 1 + c.len_utf8();
    if matches!(c, 'x' | 'p' | 'P') && s[n..].starts_with('{') {
        return s[n..].find('}').map_or(s.len(), |end| n + end + 1);
    }
    match s[n..].chars().next() {
        Some(name) if matches!(c, 'p' | 'P') => n + name.len_utf8(),
        _ => n,
    }
}

/// The length of the repetition `{n}`, `{n,}` or `{n,m}` at the start of `s`; 0 when the `{`
/// starts none, and Go reads it as a literal.
fn repetition_len(s: &str) -> usize {
    let b = s.as_bytes();
    // Go takes no leading zeros (`a{01}` is literal text): such a count makes no repetition.
    let digits = |from: usize| -> Option<usize> {
        let n = b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
        (n < 2 || b[from] != b'0').then_some(n)
    };
    let Some(lo) = digits(1).filter(|n| *n > 0) else {
        return 0;
    };
    let mut at = 1 + lo;
    if b.get(at) == Some(&b',') {
        let Some(hi) = digits(at + 1) else {
            return 0;
        };
        at += 1 + hi;
    }
    if b.get(at) == Some(&b'}') {
        at + 1
    } else {
        0
    }
}

/// Copies the bracket class at the start of `s` to `out` as Rust must read it, and returns
/// what follows it. Go's items: `[:name:]`, `\pX` / `\p{…}`, `\d`-style classes, and
/// characters or ranges of them (`a`, `\x41`, `a-z`); a `-` that is no range's operator and
/// every `[`, `&`, `~` are literals, which Rust needs escaped.
fn bracket<'a>(s: &'a str, out: &mut String) -> &'a str {
    out.push('[');
    let mut rest = &s[1..];
    if let Some(r) = rest.strip_prefix('^') {
        out.push('^');
        rest = r;
    }
    let mut first = true;
    loop {
        let Some(c) = rest.chars().next() else {
            // Unclosed: the compiler reports it.
            return rest;
        };
        if c == ']' && !first {
            out.push(']');
            return &rest[1..];
        }
        first = false;
        if rest.starts_with("[:") {
            if let Some(end) = rest[2..].find(":]") {
                out.push_str(&rest[..end + 4]);
                rest = &rest[end + 4..];
                continue;
            }
        }
        if c == '\\' {
            let n = escape_len(rest);
            let class = rest[1..]
                .chars()
                .next()
                .is_some_and(|e| "pPdDwWsS".contains(e));
            if class {
                out.push_str(&rest[..n]);
                rest = &rest[n..];
                continue;
            }
        }
        // A character, and a range when a `-` follows that does not end the class.
        rest = class_char(rest, out);
        let b = rest.as_bytes();
        if b.len() >= 2 && b[0] == b'-' && b[1] != b']' {
            out.push('-');
            rest = class_char(&rest[1..], out);
        }
    }
}

/// Copies one character of a bracket class (an escape or a character) and returns the rest.
fn class_char<'a>(s: &'a str, out: &mut String) -> &'a str {
    let Some(c) = s.chars().next() else {
        return s;
    };
    if s.starts_with("\\<") || s.starts_with("\\>") {
        out.push_str(&s[1..2]);
        return &s[2..];
    }
    if c == '\\' {
        let n = escape_len(s);
        out.push_str(&s[..n]);
        return &s[n..];
    }
    if matches!(c, '-' | '[' | ']' | '&' | '~') {
        out.push('\\');
    }
    out.push(c);
    &s[c.len_utf8()..]
}

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
