//! What the layout produces: [`Bounds`] with pvi's split arithmetic, the [`Widget`] tree of a
//! screen in content coordinates, and [`Screen`]. `bob` turns these into XML.

use indexmap::IndexMap;

use super::device::{Component, ReadWidget, WriteWidget};
use super::PviError;

pub(super) const SPACING: i64 = 5;
pub(super) const TITLE_HEIGHT: i64 = 25;

/// A rectangle in pixels (pvi's `Bounds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bounds {
    pub x: i64,
    pub y: i64,
    pub w: i64,
    pub h: i64,
}

impl Bounds {
    pub(super) fn new(x: i64, y: i64, w: i64, h: i64) -> Bounds {
        Bounds { x, y, w, h }
    }

    pub(super) fn split_left(&self, width: i64) -> Result<(Bounds, Bounds), PviError> {
        let to_split = width + SPACING;
        if to_split >= self.w {
            return Err(PviError::Layout(format!(
                "can't split off {to_split} from {}",
                self.w
            )));
        }
        let left = Bounds::new(self.x, self.y, width, self.h);
        let right = Bounds::new(self.x + to_split, self.y, self.w - to_split, self.h);
        Ok((left, right))
    }

    /// Equal widths `int(ws * (1/n))` in floating point, as pvi's `split_by_ratio`.
    pub(super) fn split_into(&self, n: usize) -> Result<Vec<Bounds>, PviError> {
        if n == 0 {
            return Err(PviError::Layout(
                "cannot split a row into 0 cells".to_owned(),
            ));
        }
        let ws = self.w - (n as i64 - 1) * SPACING;
        let ratio = 1.0 / n as f64;
        let width = (ws as f64 * ratio) as i64;
        Ok((0..n as i64)
            .map(|i| Bounds::new(self.x + width * i + SPACING * i, self.y, width, self.h))
            .collect())
    }

    pub(super) fn split_into_rows(&self, n: i64) -> Vec<Bounds> {
        let h = (self.h - (n - 1) * SPACING).div_euclid(n);
        (0..n)
            .map(|i| Bounds::new(self.x, self.y + i * (h + SPACING), self.w, h))
            .collect()
    }

    /// The largest centred square (pvi's `square`, float division then truncation).
    pub fn square(&self) -> Bounds {
        let s = self.w.min(self.h);
        let off = |d: i64| (d as f64 / 2.0) as i64;
        Bounds::new(self.x + off(self.w - s), self.y + off(self.h - s), s, s)
    }
}

/// Any widget a PV is shown with.
#[derive(Debug, Clone)]
pub enum PvWidget {
    Read(ReadWidget),
    Write(WriteWidget),
}

/// One formatted element of a screen, in content coordinates.
#[derive(Debug, Clone)]
pub enum Widget {
    Label {
        b: Bounds,
        text: String,
        tooltip: String,
    },
    Heading {
        b: Bounds,
        text: String,
    },
    Pv {
        b: Bounds,
        pv: String,
        widget: PvWidget,
    },
    Action {
        b: Bounds,
        label: String,
        pv: String,
        value: String,
    },
    OpenDisplay {
        b: Bounds,
        label: String,
        file_name: String,
        group: Option<Box<Component>>,
        macros: IndexMap<String, String>,
    },
    Group {
        b: Bounds,
        title: String,
        children: Vec<Widget>,
    },
}

impl Widget {
    pub fn bounds(&self) -> &Bounds {
        match self {
            Widget::Label { b, .. }
            | Widget::Heading { b, .. }
            | Widget::Pv { b, .. }
            | Widget::Action { b, .. }
            | Widget::OpenDisplay { b, .. }
            | Widget::Group { b, .. } => b,
        }
    }
}

/// One screen file: its size (padding included), title and top-level widgets.
#[derive(Debug, Clone)]
pub struct Screen {
    pub bounds: Bounds,
    pub title: String,
    /// Whether a title bar is drawn; false for an empty device label (0.14), and then for its
    /// sub-screens too, because they share the root's screen class.
    pub has_title: bool,
    pub children: Vec<Widget>,
}

impl Screen {
    /// Where top-level widgets are shifted to at format time.
    pub fn padding(&self) -> (i64, i64) {
        if self.has_title {
            (SPACING, SPACING + TITLE_HEIGHT)
        } else {
            (SPACING, SPACING)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_arithmetic_matches_pvi() {
        let b = Bounds::new(205, 0, 205, 20);
        let cells = b.split_into(2).unwrap();
        assert_eq!((cells[0].w, cells[1].x), (100, 310));
        assert_eq!(
            Bounds::new(205, 0, 100, 20).square(),
            Bounds::new(245, 0, 20, 20)
        );
        assert_eq!(Bounds::new(205, 0, 205, 20).square().x, 297);
        assert!(Bounds::new(0, 0, 205, 20).split_left(200).is_err());
    }
}
