//! Semantic themes: panes ask for roles (`text`, `muted`, `accent`, ...); a theme file sets
//! a style per role and may inherit from another theme. `NO_COLOR` selects a monochrome
//! theme that keeps emphasis through bold, underline and reverse video.

use std::collections::BTreeMap;
use std::path::Path;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

/// The built-in theme files (also shipped in `themes/`).
const BUILTIN: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("colorblind", include_str!("../../themes/colorblind.toml")),
];

/// The roles a theme colours.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub text: Style,
    pub muted: Style,
    pub accent: Style,
    pub title: Style,
    pub border: Style,
    pub header: Style,
    pub selection: Style,
    pub marked: Style,
    pub danger: Style,
    pub warning: Style,
    pub ok: Style,
    pub money_negative: Style,
    pub diff: Style,
    pub bar: Style,
    pub status_bar: Style,
    pub key: Style,
}

#[derive(Debug, Deserialize, Default)]
struct RoleSpec {
    fg: Option<String>,
    bg: Option<String>,
    #[serde(default)]
    bold: bool,
    #[serde(default)]
    italic: bool,
    #[serde(default)]
    underline: bool,
    #[serde(default)]
    reverse: bool,
    #[serde(default)]
    dim: bool,
}

#[derive(Debug, Deserialize)]
struct ThemeFile {
    #[serde(default)]
    inherits: Option<String>,
    #[serde(default)]
    roles: BTreeMap<String, RoleSpec>,
}

fn parse_color(s: &str) -> anyhow::Result<Color> {
    s.parse::<Color>().map_err(|_| {
        anyhow::anyhow!("unknown colour {s:?} (use a name like \"cyan\" or \"#rrggbb\")")
    })
}

impl RoleSpec {
    fn style(&self) -> anyhow::Result<Style> {
        let mut st = Style::default();
        if let Some(fg) = &self.fg {
            st = st.fg(parse_color(fg)?);
        }
        if let Some(bg) = &self.bg {
            st = st.bg(parse_color(bg)?);
        }
        let mut m = Modifier::empty();
        if self.bold {
            m |= Modifier::BOLD;
        }
        if self.italic {
            m |= Modifier::ITALIC;
        }
        if self.underline {
            m |= Modifier::UNDERLINED;
        }
        if self.reverse {
            m |= Modifier::REVERSED;
        }
        if self.dim {
            m |= Modifier::DIM;
        }
        Ok(st.add_modifier(m))
    }
}

impl Theme {
    /// Monochrome: no colours at all; emphasis by bold, underline and reverse video.
    pub fn monochrome() -> Theme {
        let b = Style::default().add_modifier(Modifier::BOLD);
        Theme {
            name: "monochrome".into(),
            text: Style::default(),
            muted: Style::default(),
            accent: b,
            title: b,
            border: Style::default(),
            header: Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            selection: Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD),
            marked: Style::default().add_modifier(Modifier::UNDERLINED),
            danger: b,
            warning: Style::default().add_modifier(Modifier::UNDERLINED),
            ok: Style::default(),
            money_negative: b,
            diff: Style::default().add_modifier(Modifier::REVERSED),
            bar: b,
            status_bar: Style::default().add_modifier(Modifier::REVERSED),
            key: b,
        }
    }

    fn base() -> Theme {
        Theme {
            name: "base".into(),
            ..Theme::monochrome()
        }
    }

    fn apply(&mut self, file: &ThemeFile) -> anyhow::Result<()> {
        for (role, spec) in &file.roles {
            let st = spec.style()?;
            let slot = match role.as_str() {
                "text" => &mut self.text,
                "muted" => &mut self.muted,
                "accent" => &mut self.accent,
                "title" => &mut self.title,
                "border" => &mut self.border,
                "header" => &mut self.header,
                "selection" => &mut self.selection,
                "marked" => &mut self.marked,
                "danger" => &mut self.danger,
                "warning" => &mut self.warning,
                "ok" => &mut self.ok,
                "money_negative" => &mut self.money_negative,
                "diff" => &mut self.diff,
                "bar" => &mut self.bar,
                "status_bar" => &mut self.status_bar,
                "key" => &mut self.key,
                other => anyhow::bail!("unknown role {other:?}"),
            };
            *slot = st;
        }
        Ok(())
    }

    fn source(name: &str, user_dir: Option<&Path>) -> anyhow::Result<String> {
        if let Some(dir) = user_dir {
            let p = dir.join(format!("{name}.toml"));
            if p.exists() {
                return std::fs::read_to_string(&p)
                    .map_err(|e| anyhow::anyhow!("theme {}: {e}", p.display()));
            }
        }
        BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.to_string())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown theme {name:?}: choose one of {}",
                    Theme::names().join(", ")
                )
            })
    }

    /// Loads a theme by name: `USER_DIR/NAME.toml` first, then the built-ins; `inherits`
    /// chains are followed (at most 8 deep).
    pub fn load(name: &str, user_dir: Option<&Path>) -> anyhow::Result<Theme> {
        if name == "monochrome" || name == "none" {
            return Ok(Theme::monochrome());
        }
        let mut chain = Vec::new();
        let mut next = Some(name.to_string());
        while let Some(n) = next {
            if chain.len() >= 8 {
                anyhow::bail!("theme {name:?}: inheritance too deep");
            }
            let text = Theme::source(&n, user_dir)?;
            let file: ThemeFile =
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("theme {n:?}: {e}"))?;
            next = file.inherits.clone();
            chain.push((n, file));
        }
        let mut theme = Theme::base();
        for (n, file) in chain.iter().rev() {
            theme
                .apply(file)
                .map_err(|e| anyhow::anyhow!("theme {n:?}: {e}"))?;
        }
        theme.name = name.to_string();
        Ok(theme)
    }

    /// The theme to use: monochrome when `NO_COLOR` is set (non-empty), else `name`
    /// (default `dark`).
    pub fn select(
        name: Option<&str>,
        no_color: bool,
        user_dir: Option<&Path>,
    ) -> anyhow::Result<Theme> {
        if no_color {
            return Ok(Theme::monochrome());
        }
        Theme::load(name.unwrap_or("dark"), user_dir)
    }

    pub fn names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    /// Whether colours are in use (monochrome marks things with text too).
    pub fn is_mono(&self) -> bool {
        self.name == "monochrome"
    }

    /// Every role with its name (for checks over all of them).
    pub fn roles(&self) -> [(&'static str, Style); 16] {
        [
            ("text", self.text),
            ("muted", self.muted),
            ("accent", self.accent),
            ("title", self.title),
            ("border", self.border),
            ("header", self.header),
            ("selection", self.selection),
            ("marked", self.marked),
            ("danger", self.danger),
            ("warning", self.warning),
            ("ok", self.ok),
            ("money_negative", self.money_negative),
            ("diff", self.diff),
            ("bar", self.bar),
            ("status_bar", self.status_bar),
            ("key", self.key),
        ]
    }

    /// A cell of role `role` on the selected row: the selection's colours win (a cyan
    /// kinds cell on a cyan selection would vanish); the role keeps its emphasis (bold,
    /// underline), never its colours or reverse video.
    pub fn on_selection(&self, role: Style) -> Style {
        let keep = role.add_modifier & !Modifier::REVERSED;
        Style {
            fg: self.selection.fg,
            bg: self.selection.bg,
            ..self.selection
        }
        .add_modifier(keep)
    }
}

/// Approximate sRGB of a terminal colour (xterm defaults for the named ones); `None` for
/// the terminal's own default colour.
pub fn approx_rgb(c: Color) -> Option<(u8, u8, u8)> {
    Some(match c {
        Color::Reset => return None,
        Color::Black => (0, 0, 0),
        Color::Red => (205, 0, 0),
        Color::Green => (0, 205, 0),
        Color::Yellow => (205, 205, 0),
        Color::Blue => (0, 0, 238),
        Color::Magenta => (205, 0, 205),
        Color::Cyan => (0, 205, 205),
        Color::Gray => (229, 229, 229),
        Color::DarkGray => (127, 127, 127),
        Color::LightRed => (255, 0, 0),
        Color::LightGreen => (0, 255, 0),
        Color::LightYellow => (255, 255, 0),
        Color::LightBlue => (92, 92, 255),
        Color::LightMagenta => (255, 0, 255),
        Color::LightCyan => (0, 255, 255),
        Color::White => (255, 255, 255),
        Color::Rgb(r, g, b) => (r, g, b),
        Color::Indexed(i) => {
            let i = i as u32;
            if i >= 232 {
                let v = (8 + (i - 232) * 10) as u8;
                (v, v, v)
            } else if i >= 16 {
                let i = i - 16;
                let l = |x: u32| if x == 0 { 0 } else { (55 + x * 40) as u8 };
                (l(i / 36), l((i / 6) % 6), l(i % 6))
            } else {
                (128, 128, 128)
            }
        }
    })
}

/// WCAG contrast ratio of two colours (1 = none, 21 = black on white).
pub fn contrast(a: (u8, u8, u8), b: (u8, u8, u8)) -> f64 {
    let lum = |(r, g, b): (u8, u8, u8)| {
        let ch = |v: u8| {
            let v = f64::from(v) / 255.0;
            if v <= 0.03928 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * ch(r) + 0.7152 * ch(g) + 0.0722 * ch(b)
    };
    let (x, y) = (lum(a), lum(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

/// `NO_COLOR` per no-color.org: set and not empty.
pub fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_theme_loads_and_differs_from_mono() {
        for n in Theme::names() {
            let t = Theme::load(n, None).unwrap();
            assert_ne!(t.selection, Theme::monochrome().selection, "{n}");
            assert!(t.danger.fg.is_some(), "{n} danger has no colour");
        }
    }

    /// Every role drawn on the selected row stays readable in every theme: the
    /// selection's colours win, with at least 4.5:1 contrast (WCAG AA).
    #[test]
    fn every_role_is_readable_on_the_selection_in_every_theme() {
        for n in Theme::names() {
            let t = Theme::load(n, None).unwrap();
            for (role, st) in t.roles() {
                let on = t.on_selection(st);
                let (fg, bg) = (on.fg.and_then(approx_rgb), on.bg.and_then(approx_rgb));
                let (Some(fg), Some(bg)) = (fg, bg) else {
                    panic!("{n}: {role} on the selection has no colours: {on:?}");
                };
                let c = contrast(fg, bg);
                assert!(c >= 4.5, "{n}: {role} on the selection: contrast {c:.2}");
                assert!(!on.add_modifier.contains(Modifier::REVERSED), "{n}: {role}");
            }
        }
        let mono = Theme::monochrome();
        for (role, st) in mono.roles() {
            let on = mono.on_selection(st);
            assert!(on.add_modifier.contains(Modifier::REVERSED), "mono {role}");
        }
    }

    #[test]
    fn no_color_is_monochrome_with_emphasis() {
        let t = Theme::select(Some("light"), true, None).unwrap();
        assert!(t.is_mono());
        assert!(t.selection.add_modifier.contains(Modifier::REVERSED));
        assert!(t.selection.fg.is_none() && t.selection.bg.is_none());
    }

    #[test]
    fn user_theme_inherits_and_errors_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mine.toml"),
            "inherits = \"dark\"\n[roles]\naccent = { fg = \"#ff8800\", bold = true }\n",
        )
        .unwrap();
        let t = Theme::load("mine", Some(dir.path())).unwrap();
        assert_eq!(t.accent.fg, Some(Color::Rgb(0xff, 0x88, 0x00)));
        assert_eq!(t.danger, Theme::load("dark", None).unwrap().danger);
        std::fs::write(
            dir.path().join("bad.toml"),
            "[roles]\nsparkle = { fg = \"red\" }\n",
        )
        .unwrap();
        assert!(Theme::load("bad", Some(dir.path()))
            .unwrap_err()
            .to_string()
            .contains("sparkle"));
        assert!(Theme::load("nope", None)
            .unwrap_err()
            .to_string()
            .contains("dark"));
    }
}
