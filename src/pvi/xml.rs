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
    #[cfg(test)]
    pub fn to_pretty_string(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, Some(0));
        out.push('\n');
        out
    }

    /// Write as a child of an element at `parent_depth` (`None`: unformatted): a line break
    /// and indentation first when formatted.
    pub fn write_child(&self, out: &mut String, parent_depth: Option<usize>) {
        let depth = child_break(out, parent_depth);
        self.write(out, depth);
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

/// Before a child of an element at `parent_depth`: the line break and indentation when
/// formatted. Returns the child's depth.
pub fn child_break(out: &mut String, parent_depth: Option<usize>) -> Option<usize> {
    let depth = parent_depth? + 1;
    out.push('\n');
    push_indent(out, depth);
    Some(depth)
}

fn push_indent(out: &mut String, depth: usize) {
    // libxml2 caps the indentation string at 60 characters
    const SPACES: &str = "                                                            ";
    out.push_str(&SPACES[..2 * depth.min(30)]);
}

/// libxml2's escaping: `&<>` (and `"`, newline, tab in attributes), `\r` as `&#13;`, and
/// anything beyond ASCII as a decimal character reference. Runs of plain characters are copied
/// at once.
pub fn escape(text: &str, out: &mut String, attr: bool) {
    let mut plain = 0;
    for (i, c) in text.char_indices() {
        let rep: &str = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '\r' => "&#13;",
            '"' if attr => "&quot;",
            '\n' if attr => "&#10;",
            '\t' if attr => "&#9;",
            c if (c as u32) > 0x7f => "",
            _ => continue,
        };
        out.push_str(&text[plain..i]);
        if rep.is_empty() {
            use std::fmt::Write;
            let _ = write!(out, "&#{};", c as u32);
        } else {
            out.push_str(rep);
        }
        plain = i + c.len_utf8();
    }
    out.push_str(&text[plain..]);
}

/// An element prepared once to be written many times with a few texts changed and children
/// added (a widget snippet of the DLS template): its elements are numbered in document order,
/// with their start tags pre-rendered and texts pre-escaped, so writing a widget copies
/// strings instead of cloning and patching a tree.
#[derive(Debug)]
pub struct Snippet {
    /// In document order; 0 is the root.
    nodes: Vec<SnippetNode>,
    /// The first element of each tag name, in document order (lxml `iter(tag)` → first).
    first: std::collections::HashMap<String, usize>,
}

#[derive(Debug)]
struct SnippetNode {
    tag: String,
    /// `<tag attr="…"` without the closing `>`.
    start: String,
    /// The text, escaped.
    text: Option<String>,
    children: Vec<usize>,
}

/// Where [`Snippet::write`] adds children: after the first `after` children of element `at`.
pub struct Insert<'a, E> {
    pub at: usize,
    pub after: usize,
    /// Writes the added children; it gets the parent's depth (see [`child_break`]).
    pub write: &'a mut WriteChildren<'a, E>,
}

/// Writes children into the output, given their parent's depth.
pub type WriteChildren<'a, E> = dyn FnMut(&mut String, Option<usize>) -> Result<(), E> + 'a;

impl Snippet {
    /// Prepare `root` for writing.
    pub fn new(root: &Element) -> Snippet {
        let mut s = Snippet {
            nodes: Vec::new(),
            first: std::collections::HashMap::new(),
        };
        s.add(root);
        s
    }

    fn add(&mut self, el: &Element) -> usize {
        let i = self.nodes.len();
        let mut start = format!("<{}", el.tag);
        for (k, v) in &el.attrs {
            start.push(' ');
            start.push_str(k);
            start.push_str("=\"");
            escape(v, &mut start, true);
            start.push('"');
        }
        let text = el.text.as_ref().map(|t| {
            let mut e = String::new();
            escape(t, &mut e, false);
            e
        });
        self.nodes.push(SnippetNode {
            tag: el.tag.clone(),
            start,
            text,
            children: Vec::new(),
        });
        self.first.entry(el.tag.clone()).or_insert(i);
        let children = el.children.iter().map(|c| self.add(c)).collect();
        self.nodes[i].children = children;
        i
    }

    /// The number of the first element named `tag` in document order.
    pub fn first(&self, tag: &str) -> Option<usize> {
        self.first.get(tag).copied()
    }

    /// The number of the first child of element `at` named `tag`.
    pub fn child(&self, at: usize, tag: &str) -> Option<usize> {
        let node = self.nodes.get(at)?;
        node.children
            .iter()
            .copied()
            .find(|&c| self.nodes[c].tag == tag)
    }

    /// The position of the first child of element `at` named `tag` among its children.
    pub fn child_position(&self, at: usize, tag: &str) -> Option<usize> {
        let node = self.nodes.get(at)?;
        node.children.iter().position(|&c| self.nodes[c].tag == tag)
    }

    /// How many children element `at` has.
    pub fn child_count(&self, at: usize) -> usize {
        self.nodes.get(at).map_or(0, |n| n.children.len())
    }

    /// Write the snippet at `depth` as [`Element::write_child`] would write the element with
    /// the text of each element `(n, text)` in `texts` replaced and `insert`'s children added.
    pub fn write_child<E>(
        &self,
        out: &mut String,
        parent_depth: Option<usize>,
        texts: &[(usize, &str)],
        insert: Option<Insert<'_, E>>,
    ) -> Result<(), E> {
        let depth = child_break(out, parent_depth);
        let mut insert = insert;
        self.write_node(0, out, depth, texts, &mut insert)
    }

    /// Write the snippet as a document's root element (depth 0), as [`Self::write_child`].
    pub fn write_root<E>(
        &self,
        out: &mut String,
        texts: &[(usize, &str)],
        insert: Option<Insert<'_, E>>,
    ) -> Result<(), E> {
        let mut insert = insert;
        self.write_node(0, out, Some(0), texts, &mut insert)
    }

    fn write_node<E>(
        &self,
        i: usize,
        out: &mut String,
        depth: Option<usize>,
        texts: &[(usize, &str)],
        insert: &mut Option<Insert<'_, E>>,
    ) -> Result<(), E> {
        let node = &self.nodes[i];
        let set = texts.iter().rev().find(|(n, _)| *n == i).map(|(_, t)| *t);
        let inserting = insert.as_ref().is_some_and(|ins| ins.at == i);
        out.push_str(&node.start);
        if node.text.is_none() && set.is_none() && node.children.is_empty() && !inserting {
            out.push_str("/>");
            return Ok(());
        }
        out.push('>');
        let child_depth = match (set, &node.text) {
            (Some(text), _) => {
                escape(text, out, false);
                None
            }
            (None, Some(text)) => {
                out.push_str(text);
                None
            }
            (None, None) => depth,
        };
        let mut written = 0;
        for &c in &node.children {
            if inserting && written == insert.as_ref().map_or(0, |ins| ins.after) {
                if let Some(ins) = insert.as_mut() {
                    (ins.write)(out, child_depth)?;
                }
            }
            let d = child_break(out, child_depth);
            self.write_node(c, out, d, texts, insert)?;
            written += 1;
        }
        if inserting && written <= insert.as_ref().map_or(0, |ins| ins.after) {
            if let Some(ins) = insert.as_mut() {
                (ins.write)(out, child_depth)?;
            }
        }
        if let (None, None, Some(d)) = (set, &node.text, depth) {
            out.push('\n');
            push_indent(out, d);
        }
        out.push_str("</");
        out.push_str(&node.tag);
        out.push('>');
        Ok(())
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
    if !s.contains('&') {
        return s.to_owned();
    }
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
