//! A minimal XML tree with the parse and print rules of lxml/libxml2 that pvi's `.bob` bytes
//! depend on (spec pvi.md §2.8): blank text is dropped on parse unless it is the whole content
//! of a childless element, and pretty printing keeps text verbatim, so template leaves nested
//! deeper than in the template print their original indentation.

/// An element: tag, attributes in document order, optional text and child elements.
/// `text: Some("")` prints `<a></a>`, `None` with no children prints `<a/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub tag: String,
    pub attrs: Vec<(String, String)>,
    pub text: Option<String>,
    pub children: Vec<Element>,
}

impl Element {
    /// A new element with text.
    pub fn with_text(tag: &str, text: &str) -> Element {
        Element {
            tag: tag.to_owned(),
            attrs: Vec::new(),
            text: Some(text.to_owned()),
            children: Vec::new(),
        }
    }

    /// A new empty element.
    pub fn new(tag: &str) -> Element {
        Element {
            tag: tag.to_owned(),
            attrs: Vec::new(),
            text: None,
            children: Vec::new(),
        }
    }

    /// The first element named `tag` in document order, this one included (lxml `iter`).
    pub fn find_mut(&mut self, tag: &str) -> Option<&mut Element> {
        if self.tag == tag {
            return Some(self);
        }
        self.children.iter_mut().find_map(|c| c.find_mut(tag))
    }

    /// The first element named `tag` in document order, this one included.
    pub fn find(&self, tag: &str) -> Option<&Element> {
        if self.tag == tag {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(tag))
    }

    /// Append a child and return it (lxml `SubElement`).
    pub fn sub(&mut self, child: Element) -> &mut Element {
        self.children.push(child);
        self.children.last_mut().expect("just pushed")
    }

    /// Pretty-print as lxml's `write(pretty_print=True)` does, ending in a newline.
    pub fn to_pretty_string(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, Some(0));
        out.push('\n');
        out
    }

    /// `depth: None` prints without formatting: libxml2 turns formatting off below an
    /// element that has text (mixed content never occurs in the DLS template).
    fn write(&self, out: &mut String, depth: Option<usize>) {
        out.push('<');
        out.push_str(&self.tag);
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            escape(v, out, true);
            out.push('"');
        }
        if self.text.is_none() && self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        match (&self.text, depth) {
            (Some(text), _) => {
                escape(text, out, false);
                for c in &self.children {
                    c.write(out, None);
                }
            }
            (None, None) => {
                for c in &self.children {
                    c.write(out, None);
                }
            }
            (None, Some(depth)) => {
                for c in &self.children {
                    out.push('\n');
                    push_indent(out, depth + 1);
                    c.write(out, Some(depth + 1));
                }
                out.push('\n');
                push_indent(out, depth);
            }
        }
        out.push_str("</");
        out.push_str(&self.tag);
        out.push('>');
    }
}

fn push_indent(out: &mut String, depth: usize) {
    // libxml2 caps the indentation string at 60 characters
    for _ in 0..depth.min(30) {
        out.push_str("  ");
    }
}

/// libxml2's escaping: `&<>` (and `"`, newline, tab in attributes), `\r` as `&#13;`, and
/// anything beyond ASCII as a decimal character reference.
fn escape(text: &str, out: &mut String, attr: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '"' if attr => out.push_str("&quot;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            c if (c as u32) > 0x7f => {
                out.push_str(&format!("&#{};", c as u32));
            }
            c => out.push(c),
        }
    }
}

/// Parse a small, trusted XML document (the embedded DLS template) with libxml2's
/// `remove_blank_text` heuristic. Declarations and comments are skipped.
pub fn parse(text: &str) -> Result<Element, String> {
    let mut p = Parser { s: text, pos: 0 };
    p.skip_misc();
    let root = p.element()?;
    Ok(root)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn skip_misc(&mut self) {
        loop {
            let r = self.rest().trim_start();
            self.pos = self.s.len() - r.len();
            if r.starts_with("<?") {
                self.skip_past("?>");
            } else if r.starts_with("<!--") {
                self.skip_past("-->");
            } else {
                return;
            }
        }
    }

    fn skip_past(&mut self, end: &str) {
        match self.rest().find(end) {
            Some(i) => self.pos += i + end.len(),
            None => self.pos = self.s.len(),
        }
    }

    fn name(&mut self) -> String {
        let r = self.rest();
        let n = r
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/' || c == '=')
            .unwrap_or(r.len());
        self.pos += n;
        r[..n].to_owned()
    }

    fn element(&mut self) -> Result<Element, String> {
        if !self.rest().starts_with('<') {
            return Err(format!("expected '<' at byte {}", self.pos));
        }
        self.pos += 1;
        let mut el = Element::new(&self.name());
        loop {
            let r = self.rest().trim_start();
            self.pos = self.s.len() - r.len();
            if r.starts_with("/>") {
                self.pos += 2;
                return Ok(el);
            }
            if r.starts_with('>') {
                self.pos += 1;
                break;
            }
            let key = self.name();
            let r = self.rest();
            let q = r.find('"').ok_or("attribute without value")?;
            let end = r[q + 1..].find('"').ok_or("unterminated attribute")?;
            el.attrs.push((key, unescape(&r[q + 1..q + 1 + end])));
            self.pos += q + end + 2;
        }
        let mut text = String::new();
        loop {
            let r = self.rest();
            let lt = r.find('<').ok_or("unterminated element")?;
            text.push_str(&r[..lt]);
            self.pos += lt;
            if self.rest().starts_with("</") {
                self.skip_past(">");
                break;
            }
            if self.rest().starts_with("<!--") {
                self.skip_past("-->");
                continue;
            }
            el.children.push(self.element()?);
        }
        // keep blank text only as the whole content of a childless element (libxml2 keepBlanks=0)
        let blank = text.chars().all(char::is_whitespace);
        if !text.is_empty() && (!blank || el.children.is_empty()) {
            el.text = Some(unescape(&text));
        }
        Ok(el)
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_leaf_text_is_kept_verbatim() {
        let root = parse("<a>\n  <b x=\"1\">\n  </b>\n  <c></c>\n  <d>t</d>\n</a>").unwrap();
        assert_eq!(
            root.to_pretty_string(),
            "<a>\n  <b x=\"1\">\n  </b>\n  <c/>\n  <d>t</d>\n</a>\n"
        );
    }

    #[test]
    fn escapes_like_libxml2() {
        let e = Element::with_text("name", "Edge & <Test> \"Dev\" \u{29c9}");
        assert_eq!(
            e.to_pretty_string(),
            "<name>Edge &amp; &lt;Test&gt; \"Dev\" &#10697;</name>\n"
        );
        assert_eq!(Element::with_text("t", "").to_pretty_string(), "<t></t>\n");
    }
}
