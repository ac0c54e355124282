//! A minimal XML tree with the parse and print rules of lxml/libxml2 that pvi's `.bob` bytes
//! depend on: blank text is dropped on parse unless it is the whole content
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
    #[cfg(test)]
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
/// anything beyond ASCII as a decimal character reference. Text without any of those is copied
/// at once; otherwise runs of plain bytes are.
pub fn escape(text: &str, out: &mut String, attr: bool) {
    let special = |b: u8| {
        matches!(b, b'&' | b'<' | b'>' | b'\r')
            || b > 0x7f
            || (attr && matches!(b, b'"' | b'\n' | b'\t'))
    };
    let bytes = text.as_bytes();
    let Some(first) = bytes.iter().position(|&b| special(b)) else {
        out.push_str(text);
        return;
    };
    let mut plain = 0;
    let mut i = first;
    while i < bytes.len() {
        let b = bytes[i];
        if !special(b) {
            i += 1;
            continue;
        }
        out.push_str(&text[plain..i]);
        let len = match b {
            b'&' => push(out, "&amp;"),
            b'<' => push(out, "&lt;"),
            b'>' => push(out, "&gt;"),
            b'\r' => push(out, "&#13;"),
            b'"' => push(out, "&quot;"),
            b'\n' => push(out, "&#10;"),
            b'\t' => push(out, "&#9;"),
            _ => {
                // a multi-byte character: `i` is at its first byte (plain runs end at boundaries)
                let c = text[i..]
                    .chars()
                    .next()
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                out.push_str("&#");
                push_int(out, i64::from(u32::from(c)));
                out.push(';');
                c.len_utf8()
            }
        };
        i += len;
        plain = i;
    }
    out.push_str(&text[plain..]);
}

/// Push a one-byte character's replacement; returns the byte length replaced (1).
fn push(out: &mut String, rep: &str) -> usize {
    out.push_str(rep);
    1
}

/// Push a number in decimal without going through `fmt`.
pub fn push_int(out: &mut String, n: i64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        out.push('-');
    }
    // only ASCII digits were written
    out.push_str(std::str::from_utf8(&buf[at..]).unwrap_or_default());
}

/// A replacement text for one element of a [`Snippet`]: text (escaped when written) or a
/// number.
#[derive(Debug, Clone)]
pub enum Text<'a> {
    Str(std::borrow::Cow<'a, str>),
    Int(i64),
}

impl Text<'_> {
    fn write(&self, out: &mut String) {
        match self {
            Text::Str(s) => escape(s, out, false),
            Text::Int(n) => push_int(out, *n),
        }
    }
}

/// An element prepared once to be written many times with a few texts changed and children
/// added (a widget snippet of the DLS template): its elements are numbered in document order,
/// with their start tags pre-rendered and texts pre-escaped. For each combination of depth,
/// replaced elements and insertion point that is written, the fixed bytes are laid out once
/// into a [`Plan`]; writing a widget then copies a few long runs and the replaced texts.
#[derive(Debug)]
pub struct Snippet {
    /// In document order; 0 is the root.
    nodes: Vec<SnippetNode>,
    /// The first element of each tag name, in document order (lxml `iter(tag)` → first).
    first: std::collections::HashMap<String, usize, foldhash::fast::FixedState>,
    /// The plans made so far, filled in order (a widget needs a handful); read without a lock.
    plans: [std::sync::OnceLock<(PlanKey, Plan)>; PLAN_SLOTS],
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

/// How many plans a snippet keeps; further combinations are planned on every write.
const PLAN_SLOTS: usize = 16;

/// What a plan depends on: the root's depth, which elements get a replaced text (bit n for
/// element n), and where children are inserted (element, after how many of its children).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PlanKey {
    depth: Option<usize>,
    set: u64,
    insert: Option<(usize, usize)>,
}

/// A snippet laid out for one [`PlanKey`]: fixed text with the places of the replaced texts
/// and of the inserted children.
#[derive(Debug, Default)]
struct Plan {
    fixed: String,
    steps: Vec<Step>,
    /// How much of `fixed` the steps already cover.
    covered: usize,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// Copy the fixed text up to this byte offset.
    Fixed(usize),
    /// Write the replaced text of this element.
    Text(usize),
    /// Call the insertion, giving it the parent's depth.
    Insert(Option<usize>),
}

impl Plan {
    fn push(&mut self, s: &str) {
        self.fixed.push_str(s);
    }

    /// Add a step after the fixed text pushed so far.
    fn step(&mut self, step: Step) {
        self.cover();
        self.steps.push(step);
    }

    fn cover(&mut self) {
        if self.fixed.len() > self.covered {
            self.covered = self.fixed.len();
            self.steps.push(Step::Fixed(self.covered));
        }
    }
}

/// Where [`Snippet::write_child`] adds children: after the first `after` children of element
/// `at`.
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
            first: Default::default(),
            plans: [const { std::sync::OnceLock::new() }; PLAN_SLOTS],
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
    /// the text of each element `(n, text)` in `texts` replaced (the last one for an element
    /// named twice) and `insert`'s children added.
    pub fn write_child<E>(
        &self,
        out: &mut String,
        parent_depth: Option<usize>,
        texts: &[(usize, Text<'_>)],
        insert: Option<Insert<'_, E>>,
    ) -> Result<(), E> {
        let depth = child_break(out, parent_depth);
        self.write_at(out, depth, texts, insert)
    }

    /// Write the snippet as a document's root element (depth 0), as [`Self::write_child`].
    pub fn write_root<E>(
        &self,
        out: &mut String,
        texts: &[(usize, Text<'_>)],
        insert: Option<Insert<'_, E>>,
    ) -> Result<(), E> {
        self.write_at(out, Some(0), texts, insert)
    }

    fn write_at<E>(
        &self,
        out: &mut String,
        depth: Option<usize>,
        texts: &[(usize, Text<'_>)],
        mut insert: Option<Insert<'_, E>>,
    ) -> Result<(), E> {
        let key = insert.as_ref().map(|i| (i.at, i.after));
        let made;
        let plan = match self.cached_plan(depth, texts, key) {
            Some(plan) => plan,
            None => {
                made = self.make_plan(depth, texts, key);
                &made
            }
        };
        let mut copied = 0;
        for step in &plan.steps {
            match *step {
                Step::Fixed(end) => {
                    out.push_str(&plan.fixed[copied..end]);
                    copied = end;
                }
                Step::Text(n) => {
                    if let Some((_, text)) = texts.iter().rev().find(|(m, _)| *m == n) {
                        text.write(out);
                    }
                }
                Step::Insert(d) => {
                    if let Some(ins) = insert.take() {
                        (ins.write)(out, d)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The cached plan for writing at `depth` with `texts` and `insert`, made and cached
    /// now if there is room (and the snippet has at most 64 elements, one bit each).
    fn cached_plan(
        &self,
        depth: Option<usize>,
        texts: &[(usize, Text<'_>)],
        insert: Option<(usize, usize)>,
    ) -> Option<&Plan> {
        if self.nodes.len() > 64 {
            return None;
        }
        let set = texts.iter().fold(0u64, |acc, (n, _)| acc | (1 << n));
        let key = PlanKey { depth, set, insert };
        for slot in &self.plans {
            let (k, plan) = match slot.get() {
                Some(entry) => entry,
                // a free slot (unless another thread fills it first: then it is looked at)
                None => slot.get_or_init(|| (key, self.make_plan(depth, texts, insert))),
            };
            if *k == key {
                return Some(plan);
            }
        }
        None
    }

    /// Lay out the fixed text for writing at `depth` with `texts` and `insert`.
    fn make_plan(
        &self,
        depth: Option<usize>,
        texts: &[(usize, Text<'_>)],
        insert: Option<(usize, usize)>,
    ) -> Plan {
        let is_set = |n: usize| texts.iter().any(|(m, _)| *m == n);
        let mut plan = Plan::default();
        self.plan_node(0, depth, &is_set, insert, &mut plan);
        plan.cover();
        plan
    }

    fn plan_node(
        &self,
        i: usize,
        depth: Option<usize>,
        is_set: &dyn Fn(usize) -> bool,
        insert: Option<(usize, usize)>,
        plan: &mut Plan,
    ) {
        let node = &self.nodes[i];
        let set = is_set(i);
        let after = insert.filter(|(at, _)| *at == i).map(|(_, after)| after);
        plan.push(&node.start);
        if node.text.is_none() && !set && node.children.is_empty() && after.is_none() {
            plan.push("/>");
            return;
        }
        plan.push(">");
        let child_depth = match (set, &node.text) {
            (true, _) => {
                plan.step(Step::Text(i));
                None
            }
            (false, Some(text)) => {
                plan.push(text);
                None
            }
            (false, None) => depth,
        };
        for (written, &c) in node.children.iter().enumerate() {
            if after == Some(written) {
                plan.step(Step::Insert(child_depth));
            }
            let d = child_break(&mut plan.fixed, child_depth);
            self.plan_node(c, d, is_set, insert, plan);
        }
        if after.is_some_and(|a| a >= node.children.len()) {
            plan.step(Step::Insert(child_depth));
        }
        if let (false, None, Some(d)) = (set, &node.text, depth) {
            plan.push("\n");
            push_indent(&mut plan.fixed, d);
        }
        plan.push("</");
        plan.push(&node.tag);
        plan.push(">");
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

    #[test]
    fn escapes_attributes_and_numbers() {
        let mut out = String::new();
        escape("a\"b\n\tc\r<é>", &mut out, true);
        assert_eq!(out, "a&quot;b&#10;&#9;c&#13;&lt;&#233;&gt;");
        out.clear();
        escape("plain \"text\"\n", &mut out, false);
        assert_eq!(out, "plain \"text\"\n");
        out.clear();
        for n in [0, 7, -12, i64::MIN, i64::MAX] {
            push_int(&mut out, n);
            out.push(' ');
        }
        assert_eq!(out, format!("0 7 -12 {} {} ", i64::MIN, i64::MAX));
    }

    /// A snippet written with replaced texts and inserted children prints as the patched tree
    /// would, the same on every write (the plans are reused).
    #[test]
    fn snippet_writes_as_the_patched_tree() {
        let root =
            parse("<w t=\"1\">\n  <x>0</x>\n  <e/>\n  <g>\n    <x>9</x>\n  </g>\n</w>").unwrap();
        let snippet = Snippet::new(&root);
        let (x, e) = (snippet.first("x").unwrap(), snippet.first("e").unwrap());
        let mut patched = root.clone();
        patched.children[0].text = Some("-5".into());
        patched.children[1].text = Some("a<b".into());
        patched.children.insert(1, Element::with_text("new", "n"));
        let mut wrapper = Element::new("top");
        wrapper.children.push(patched);
        let expected = wrapper.to_pretty_string();
        for _ in 0..2 {
            let mut out = String::from("<top>");
            let texts = [
                (e, Text::Str("ignored".into())),
                (x, Text::Int(-5)),
                (e, Text::Str("a<b".into())),
            ];
            let mut add = |out: &mut String, d: Option<usize>| -> Result<(), ()> {
                Element::with_text("new", "n").write_child(out, d);
                Ok(())
            };
            let insert = Insert {
                at: 0,
                after: 1,
                write: &mut add,
            };
            snippet
                .write_child(&mut out, Some(0), &texts, Some(insert))
                .unwrap();
            out.push_str("\n</top>\n");
            assert_eq!(out, expected);
        }
        let mut plain = String::new();
        snippet.write_root::<()>(&mut plain, &[], None).unwrap();
        plain.push('\n');
        assert_eq!(plain, root.to_pretty_string());
    }

    /// Past the plans a snippet keeps, writes are planned each time, with the same result.
    #[test]
    fn snippet_writes_the_same_beyond_its_cached_plans() {
        let root = parse("<w>\n  <x>0</x>\n  <g>\n    <e/>\n  </g>\n</w>").unwrap();
        let snippet = Snippet::new(&root);
        for _ in 0..2 {
            for depth in 0..2 * PLAN_SLOTS {
                let mut expected = String::new();
                root.write_child(&mut expected, Some(depth));
                let mut out = String::new();
                snippet
                    .write_child::<()>(&mut out, Some(depth), &[], None)
                    .unwrap();
                assert_eq!(out, expected, "depth {depth}");
            }
        }
    }
}
