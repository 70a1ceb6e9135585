//! A table of strings, printed as aligned text and written as Markdown, so the
//! terminal and `REPORT.md` show the same figures.

/// A table of strings, rendered as aligned text or Markdown.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Leading columns aligned left (words); the rest are figures, aligned right.
    left: usize,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|&h| h.to_owned()).collect(),
            rows: Vec::new(),
            left: 1,
        }
    }

    pub fn left_aligned(mut self, columns: usize) -> Table {
        self.left = columns;
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether the table has no rows (a section may be only notes).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn text(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                    .chain([self.header[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let mut s = String::from(" ");
            for (i, w) in widths.iter().enumerate() {
                let cell = cells.get(i).map_or("", String::as_str);
                let pad = w - cell.chars().count();
                if i < self.left {
                    s.push_str(&format!("  {cell}{}", " ".repeat(pad)));
                } else {
                    s.push_str(&format!("  {}{cell}", " ".repeat(pad)));
                }
            }
            s.trim_end().to_owned() + "\n"
        };
        let mut out = line(&self.header);
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }

    pub fn markdown(&self) -> String {
        let mut out = format!("| {} |\n", self.header.join(" | "));
        out.push('|');
        for i in 0..self.header.len() {
            out.push_str(if i < self.left { "---|" } else { "---:|" });
        }
        out.push('\n');
        for row in &self.rows {
            out.push_str(&format!("| {} |\n", row.join(" | ")));
        }
        out
    }
}

/// A titled table with notes under it.
pub(super) struct Section {
    pub(super) title: String,
    pub(super) table: Table,
    pub(super) notes: Vec<String>,
}
