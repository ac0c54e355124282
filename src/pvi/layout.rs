//! The DLS screen layout: a column-packing layout of 200+200 px rows,
//! group boxes, tables of rows, and sub-screens, ported from pvi 0.14.4's
//! `ScreenFormatterFactory` with its in-place column updates and float arithmetic.
//!
//! The output is a tree of `widget::Widget`s with content coordinates; `bob` turns it into XML.

use std::borrow::Cow;

use indexmap::IndexMap;

use super::device::{Component, Kind, Layout, ReadWidget, WriteWidget};
use super::widget::{Bounds, PvWidget, Screen, Widget, SPACING, TITLE_HEIGHT};
use super::PviError;

const MAX_HEIGHT: i64 = 900;
const LABEL_WIDTH: i64 = 200;
const WIDGET_WIDTH: i64 = 200;
const WIDGET_HEIGHT: i64 = 20;
const GROUP_LABEL_HEIGHT: i64 = 26;
const GROUP_WIDGET_INDENT: i64 = 18;
const GROUP_WIDTH_OFFSET: i64 = 26;
const FULL_W: i64 = LABEL_WIDTH + WIDGET_WIDTH + 2 * SPACING;

fn max_x(ws: &[Widget]) -> i64 {
    ws.iter()
        .map(|w| w.bounds().x + w.bounds().w)
        .max()
        .unwrap_or(0)
}
fn max_y(ws: &[Widget]) -> i64 {
    ws.iter()
        .map(|w| w.bounds().y + w.bounds().h)
        .max()
        .unwrap_or(0)
}
fn next_x(ws: &[Widget]) -> i64 {
    if ws.is_empty() {
        0
    } else {
        max_x(ws) + SPACING
    }
}
fn next_y(ws: &[Widget]) -> i64 {
    if ws.is_empty() {
        0
    } else {
        max_y(ws) + SPACING
    }
}

/// Lay out a device: the main screen plus every sub-screen as (file stem, screen), where the
/// stem of the main screen is `base_file_name` (e.g. `simDetector.pvi`).
pub fn layout(
    components: Vec<Component>,
    title: &str,
    base_file_name: &str,
) -> Result<(Screen, Vec<(String, Screen)>), PviError> {
    let factory = Factory {
        base_file_name: base_file_name.to_owned(),
        has_title: !title.is_empty(),
    };
    factory.screen(components, title)
}

struct Factory {
    base_file_name: String,
    has_title: bool,
}

fn move_to_subscreen(c: Component) -> Component {
    let label = match c.kind {
        Kind::Group { .. } => c.label.clone(),
        _ => None,
    };
    Component {
        name: c.name.clone(),
        label,
        description: None,
        kind: Kind::Group {
            layout: Layout::SubScreen {
                labelled: false,
                stacked: false,
            },
            children: vec![c],
        },
    }
}

fn is_stacked_rw(c: &Component) -> bool {
    matches!(
        &c.kind,
        Kind::SignalRW {
            read_widget: Some(ReadWidget::TextRead { .. }),
            ..
        }
    )
}

impl Factory {
    /// pvi's `create_screen_formatter`.
    fn screen(
        &self,
        components: Vec<Component>,
        title: &str,
    ) -> Result<(Screen, Vec<(String, Screen)>), PviError> {
        let mut widgets: Vec<Widget> = Vec::new();
        let mut columns = vec![Bounds::new(0, 0, FULL_W, WIDGET_HEIGHT)];
        let mut components = components;
        let (components, stacked, in_subscreen) = match components.as_mut_slice() {
            [Component {
                kind:
                    Kind::Group {
                        layout: Layout::SubScreen { stacked, .. },
                        children,
                    },
                ..
            }] => (std::mem::take(children), *stacked, true),
            _ => (components, false, false),
        };
        let count = components.len();
        for c in components {
            if matches!(c.kind, Kind::Ignored) {
                continue;
            }
            let mut nxt = Bounds::new(next_x(&widgets), 0, FULL_W, WIDGET_HEIGHT);
            let c = if c.plot_widget().is_some() && count != 1 {
                move_to_subscreen(c)
            } else {
                c
            };
            let col = columns.last_mut().expect("columns starts non-empty");
            let made = match &c.kind {
                Kind::Group { layout, .. } if !matches!(layout, Layout::Row { .. }) => {
                    self.group_formatters(c, col, &mut nxt, !in_subscreen)?
                }
                _ => {
                    self.row_formatters(&c, MAX_HEIGHT, col, &mut nxt, true, true, stacked, false)?
                }
            };
            widgets.extend(made);
            if nxt.y != 0 {
                columns.push(nxt);
            }
        }
        let subs = self.sub_screens(&mut widgets)?;
        let (w, h) = (max_x(&widgets), max_y(&widgets));
        let pad_h = if self.has_title {
            2 * SPACING + TITLE_HEIGHT
        } else {
            2 * SPACING
        };
        let screen = Screen {
            bounds: Bounds::new(0, 0, w + 2 * SPACING, h + pad_h),
            title: title.to_owned(),
            has_title: self.has_title,
            children: widgets,
        };
        Ok((screen, subs))
    }

    /// pvi's `create_sub_screen_formatters`: buttons at the root, then inside group boxes.
    /// Each button's group moves into its sub-screen (the button keeps its file name only).
    fn sub_screens(&self, widgets: &mut [Widget]) -> Result<Vec<(String, Screen)>, PviError> {
        let mut groups = Vec::new();
        let mut take = |w: &mut Widget| {
            if let Widget::OpenDisplay {
                file_name,
                group: group @ Some(_),
                ..
            } = w
            {
                groups.extend(group.take().map(|g| (file_name.clone(), g)));
            }
        };
        widgets.iter_mut().for_each(&mut take);
        for w in widgets.iter_mut() {
            if let Widget::Group { children, .. } = w {
                children.iter_mut().for_each(&mut take);
            }
        }
        let mut out = Vec::new();
        for (file_name, group) in groups {
            let factory = Factory {
                base_file_name: file_name.clone(),
                has_title: self.has_title,
            };
            let title = group.name.clone();
            let (screen, subs) = factory.screen(vec![*group], &title)?;
            out.push((file_name.clone(), screen));
            out.extend(subs);
        }
        Ok(out)
    }

    /// pvi's `create_group_formatters` for a top-level group.
    fn group_formatters(
        &self,
        mut c: Component,
        col: &mut Bounds,
        nxt: &mut Bounds,
        squeeze: bool,
    ) -> Result<Vec<Widget>, PviError> {
        let Kind::Group { layout, children } = &mut c.kind else {
            unreachable!("group_formatters is only called with groups");
        };
        if let Layout::SubScreen { labelled, .. } = layout {
            let labelled = *labelled;
            return self.row_formatters(&c, MAX_HEIGHT, col, nxt, true, labelled, false, false);
        }
        if children.iter().any(|ch| ch.plot_widget().is_some()) {
            *children = std::mem::take(children)
                .into_iter()
                .map(|ch| {
                    if ch.plot_widget().is_some() {
                        move_to_subscreen(ch)
                    } else {
                        ch
                    }
                })
                .collect();
        }
        let mut g = self.group_formatter(&c, Bounds::new(col.x, col.y, 0, MAX_HEIGHT), squeeze)?;
        if g.1.h + g.1.y <= MAX_HEIGHT {
            g.1.w += GROUP_WIDTH_OFFSET;
            col.y = g.1.y + g.1.h + SPACING;
        } else {
            // no further check in the next column: screens can be taller than 900
            g = self.group_formatter(&c, Bounds::new(nxt.x, nxt.y, 0, MAX_HEIGHT), squeeze)?;
            g.1.w += GROUP_WIDTH_OFFSET;
            nxt.y = g.1.y + g.1.h + SPACING;
        }
        Ok(vec![Widget::Group {
            b: g.1,
            title: g.0,
            children: g.2,
        }])
    }

    /// pvi's `create_group_formatter`: the inside of a group box, resized by its padding.
    fn group_formatter(
        &self,
        group: &Component,
        mut bounds: Bounds,
        squeeze: bool,
    ) -> Result<(String, Bounds, Vec<Widget>), PviError> {
        let Kind::Group { layout, children } = &group.kind else {
            unreachable!("group_formatter is only called with groups");
        };
        let grid_stacked = match layout {
            Layout::Grid { stacked, .. } => *stacked,
            Layout::SubScreen { .. } => false,
            _ => {
                return Err(PviError::Layout(format!(
                    "group '{}': can only do Grid and SubScreen layouts at the top of a screen",
                    group.name
                )))
            }
        };
        let mut col = Bounds::new(0, 0, FULL_W, WIDGET_HEIGHT);
        let mut widgets = Vec::new();
        for c in children {
            let add_label = match &c.kind {
                Kind::Ignored => continue,
                Kind::Group {
                    layout: Layout::SubScreen { labelled, .. },
                    ..
                } => *labelled,
                Kind::Group {
                    layout: Layout::Grid { .. },
                    ..
                } => {
                    return Err(PviError::Layout(format!(
                        "group '{}': cannot nest a Group(Grid) '{}' in another group on one screen",
                        group.name, c.name
                    )))
                }
                _ => true,
            };
            let mut nxt = Bounds::new(next_x(&widgets), 0, FULL_W, WIDGET_HEIGHT);
            let made = self.row_formatters(
                c,
                bounds.h,
                &mut col,
                &mut nxt,
                false,
                add_label,
                grid_stacked,
                squeeze,
            )?;
            widgets.extend(made);
            if nxt.y != 0 {
                col = nxt;
            }
        }
        bounds.h = max_y(&widgets) + 2 * SPACING + GROUP_LABEL_HEIGHT;
        bounds.w = max_x(&widgets) + 2 * SPACING;
        Ok((group.get_label(), bounds, widgets))
    }

    /// pvi's `create_component_widget_formatters`: one row in the current column, or in the
    /// next column when it would pass `parent_h`.
    #[allow(clippy::too_many_arguments)]
    fn row_formatters(
        &self,
        c: &Component,
        parent_h: i64,
        col: &mut Bounds,
        nxt: &mut Bounds,
        indent: bool,
        add_label: bool,
        stacked: bool,
        squeeze: bool,
    ) -> Result<Vec<Widget>, PviError> {
        let mut t = *col;
        let mut tn = *nxt;
        if indent {
            t.x += GROUP_WIDGET_INDENT;
            tn.x += GROUP_WIDGET_INDENT;
        }
        if let Some((w, h)) = c.plot_widget().and_then(|w| w.plot_size()) {
            t.w = w;
            t.h = h;
        } else if stacked && is_stacked_rw(c) {
            t.h = 2 * WIDGET_HEIGHT + SPACING;
            tn.h = t.h;
        }
        let ws = self.component(c, t, add_label, stacked, squeeze)?;
        if max_y(&ws) <= parent_h {
            col.y = next_y(&ws);
            return Ok(ws);
        }
        let ws = self.component(c, tn, add_label, stacked, squeeze)?;
        nxt.y = next_y(&ws);
        Ok(ws)
    }

    /// pvi's `generate_component_formatters`: label plus the row's cells.
    fn component(
        &self,
        c: &Component,
        mut b: Bounds,
        mut add_label: bool,
        stacked: bool,
        squeeze: bool,
    ) -> Result<Vec<Widget>, PviError> {
        let mut out = Vec::new();
        let mut label_w = LABEL_WIDTH;
        let row: Cow<'_, [Component]> = match &c.kind {
            Kind::Group {
                layout: Layout::Row { header },
                children,
            } => {
                label_w = self.row_header(
                    &mut b,
                    children.len(),
                    header.as_deref(),
                    add_label,
                    squeeze,
                    &mut out,
                )?;
                if stacked && children.iter().any(is_stacked_rw) {
                    b.h = 2 * WIDGET_HEIGHT + SPACING;
                }
                Cow::Borrowed(children.as_slice())
            }
            _ => match c.write() {
                Some((pv, WriteWidget::ButtonPanel { actions })) => {
                    Cow::Owned(button_row(c, pv, actions))
                }
                _ => {
                    if !single_needs_label(c, &mut b) {
                        add_label = false;
                    }
                    Cow::Borrowed(std::slice::from_ref(c))
                }
            },
        };
        let row_b = if add_label {
            let (left, right) = b.split_left(label_w)?;
            let label = c.get_label();
            let description = c.description.as_deref().filter(|d| !d.is_empty());
            out.push(Widget::Label {
                b: left,
                tooltip: format!(
                    "{label} - {}",
                    description.unwrap_or("No description provided")
                ),
                text: label,
            });
            right
        } else {
            b
        };
        if matches!(c.kind, Kind::SignalRef) {
            return Err(PviError::Layout(format!(
                "SignalRef '{}' is not supported (pvi 0.14.4 crashes on it)",
                c.name
            )));
        }
        self.row_cells(&row, row_b, stacked, &mut out)?;
        Ok(out)
    }

    /// The width arithmetic and header cells of a Row group; returns the label width.
    fn row_header(
        &self,
        b: &mut Bounds,
        n: usize,
        header: Option<&[String]>,
        add_label: bool,
        squeeze: bool,
        out: &mut Vec<Widget>,
    ) -> Result<i64, PviError> {
        let mut widget_w = b.w - LABEL_WIDTH - SPACING;
        let mut label_w = LABEL_WIDTH;
        let n = n as i64;
        if n == 0 {
            return Err(PviError::Layout(
                "a Row group needs at least one child".to_owned(),
            ));
        }
        if squeeze {
            let available = b.w - SPACING * n;
            let scale = available as f64 / (LABEL_WIDTH + widget_w * n) as f64;
            label_w = (LABEL_WIDTH as f64 * scale).round_ties_even() as i64;
            widget_w = (available - label_w).div_euclid(n);
        } else {
            b.w = LABEL_WIDTH + SPACING + widget_w * n + SPACING * (n - 1);
        }
        if let Some(header) = header {
            if header.len() as i64 != n {
                return Err(PviError::Layout(format!(
                    "row header has {} labels for {n} children",
                    header.len()
                )));
            }
            let mut hb = *b;
            if add_label {
                hb.w = widget_w;
                hb.x += label_w + SPACING;
            }
            for text in header {
                out.push(Widget::Heading {
                    b: hb,
                    text: text.clone(),
                });
                hb.x += hb.w + SPACING;
            }
            b.y += WIDGET_HEIGHT + SPACING;
        }
        Ok(label_w)
    }

    /// pvi's `generate_row_component_formatters`: one cell per row component.
    fn row_cells(
        &self,
        row: &[Component],
        b: Bounds,
        stacked: bool,
        out: &mut Vec<Widget>,
    ) -> Result<(), PviError> {
        let cells = b.split_into(row.len())?;
        for (cell, rc) in cells.into_iter().zip(row) {
            match &rc.kind {
                Kind::SignalX {
                    write_pv, value, ..
                } => out.push(Widget::Action {
                    b: cell,
                    label: rc.get_label(),
                    pv: write_pv.clone(),
                    value: value.clone(),
                }),
                Kind::SignalRW {
                    read_pv,
                    write_pv,
                    read_widget,
                    write_widget,
                } => {
                    let (w, r) = match read_widget {
                        Some(ReadWidget::TextRead { .. }) if stacked => {
                            let rows = cell.split_into_rows(2);
                            (rows[0], Some(rows[1]))
                        }
                        Some(_) => {
                            let cols = cell.split_into(2)?;
                            (cols[0], Some(cols[1]))
                        }
                        None => (cell, None),
                    };
                    out.push(pv_widget(
                        PvWidget::Write(write_widget.clone()),
                        w,
                        write_pv,
                    ));
                    if let (Some(r), Some(rw)) = (r, read_widget) {
                        out.push(pv_widget(PvWidget::Read(rw.clone()), r, read_pv));
                    }
                }
                Kind::SignalW {
                    write_pv,
                    write_widget,
                } => out.push(pv_widget(
                    PvWidget::Write(write_widget.clone()),
                    cell,
                    write_pv,
                )),
                Kind::SignalR {
                    read_pv,
                    read_widget,
                } => {
                    if let Some(rw) = read_widget {
                        out.push(pv_widget(PvWidget::Read(rw.clone()), cell, read_pv));
                    }
                }
                Kind::Group {
                    layout: Layout::SubScreen { .. },
                    ..
                } => out.push(Widget::OpenDisplay {
                    b: cell,
                    label: format!("{} \u{29c9}", rc.get_label()),
                    file_name: self.sub_screen_file(&rc.name),
                    group: Some(Box::new(rc.clone())),
                    macros: IndexMap::new(),
                }),
                Kind::DeviceRef { ui, macros, .. } => out.push(Widget::OpenDisplay {
                    b: cell,
                    label: rc.get_label(),
                    file_name: ui.clone(),
                    group: None,
                    macros: macros.clone(),
                }),
                _ => tracing::debug!("pvi: ignoring row component {}", rc.name),
            }
        }
        Ok(())
    }

    /// `<base>_<Name><suffixes>`, the base split at the first `.` (0.14).
    fn sub_screen_file(&self, name: &str) -> String {
        let (base, suffixes) = match self.base_file_name.find('.') {
            Some(i) => self.base_file_name.split_at(i),
            None => (self.base_file_name.as_str(), ""),
        };
        format!("{base}_{}{suffixes}", name.replace(' ', "_"))
    }
}

/// Case C of pvi's `generate_component_formatters`: tables, plots and DeviceRefs take no row
/// label; tables are 100 px per column and ten rows high.
fn single_needs_label(c: &Component, b: &mut Bounds) -> bool {
    if matches!(c.kind, Kind::DeviceRef { .. }) {
        return false;
    }
    let columns = match (c.read(), c.write()) {
        (Some((_, Some(ReadWidget::TableRead { widgets }))), _) => widgets.len(),
        (_, Some((_, WriteWidget::TableWrite { widgets }))) => widgets.len(),
        _ => return c.plot_widget().is_none(),
    };
    b.w = 100 * columns as i64;
    b.h *= 10;
    false
}

/// A ButtonPanel row: one trigger per action, plus the readback of a SignalRW.
fn button_row(c: &Component, pv: &str, actions: &IndexMap<String, String>) -> Vec<Component> {
    let mut row: Vec<Component> = actions
        .iter()
        .map(|(name, value)| Component {
            name: name.clone(),
            label: None,
            description: None,
            kind: Kind::SignalX {
                write_pv: pv.to_owned(),
                value: value.clone(),
                write_widget: WriteWidget::ButtonPanel {
                    actions: IndexMap::new(),
                },
            },
        })
        .collect();
    if let Kind::SignalRW {
        read_pv,
        read_widget: Some(rw),
        ..
    } = &c.kind
    {
        row.push(Component {
            name: c.name.clone(),
            label: None,
            description: None,
            kind: Kind::SignalR {
                read_pv: read_pv.clone(),
                read_widget: Some(rw.clone()),
            },
        });
    }
    row
}

/// pvi's `pv_widget_formatter`: text widgets are `lines` rows tall (no spacing added).
fn pv_widget(widget: PvWidget, mut b: Bounds, pv: &str) -> Widget {
    let lines = match &widget {
        PvWidget::Read(ReadWidget::TextRead { lines, .. })
        | PvWidget::Write(WriteWidget::TextWrite { lines, .. }) => lines.filter(|l| *l != 0),
        _ => None,
    };
    b.h *= lines.unwrap_or(1);
    Widget::Pv {
        b,
        pv: pv.to_owned(),
        widget,
    }
}
