//! HTML mail read as text: enough of HTML to get the citizen's lines back,
//! with quoted history (`<blockquote>`, Gmail/Outlook quote containers)
//! turned into `> ` lines so the same quote rule drops it.

/// Named entities worth knowing in Vietnamese mail: the HTML 4 Latin-1 set
/// that Vietnamese letters use, plus the HTML 5 names for ă, đ, ĩ, ũ, ơ, ư.
const ENTITIES: &[(&str, &str)] = &[
    ("nbsp", " "),
    ("amp", "&"),
    ("lt", "<"),
    ("gt", ">"),
    ("quot", "\""),
    ("apos", "'"),
    ("agrave", "à"),
    ("aacute", "á"),
    ("acirc", "â"),
    ("atilde", "ã"),
    ("egrave", "è"),
    ("eacute", "é"),
    ("ecirc", "ê"),
    ("igrave", "ì"),
    ("iacute", "í"),
    ("ograve", "ò"),
    ("oacute", "ó"),
    ("ocirc", "ô"),
    ("otilde", "õ"),
    ("ugrave", "ù"),
    ("uacute", "ú"),
    ("yacute", "ý"),
    ("Agrave", "À"),
    ("Aacute", "Á"),
    ("Acirc", "Â"),
    ("Atilde", "Ã"),
    ("Egrave", "È"),
    ("Eacute", "É"),
    ("Ecirc", "Ê"),
    ("Igrave", "Ì"),
    ("Iacute", "Í"),
    ("Ograve", "Ò"),
    ("Oacute", "Ó"),
    ("Ocirc", "Ô"),
    ("Otilde", "Õ"),
    ("Ugrave", "Ù"),
    ("Uacute", "Ú"),
    ("Yacute", "Ý"),
    ("abreve", "ă"),
    ("Abreve", "Ă"),
    ("dstrok", "đ"),
    ("Dstrok", "Đ"),
    ("itilde", "ĩ"),
    ("Itilde", "Ĩ"),
    ("utilde", "ũ"),
    ("Utilde", "Ũ"),
    ("ohorn", "ơ"),
    ("Ohorn", "Ơ"),
    ("uhorn", "ư"),
    ("Uhorn", "Ư"),
    ("ndash", "–"),
    ("mdash", "—"),
    ("hellip", "…"),
    ("laquo", "«"),
    ("raquo", "»"),
    ("copy", "©"),
    ("zwnj", ""),
    ("zwj", ""),
    ("shy", ""),
];

/// Elements whose content is never text the citizen wrote.
const SKIPPED: &[&str] = &["head", "style", "script", "title", "template", "noscript"];

/// Elements that end a line.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "tr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "ul",
    "ol",
    "blockquote",
    "pre",
    "hr",
    "section",
    "article",
    "header",
    "footer",
    "dt",
    "dd",
];

/// Decodes `&name;`, `&#NNN;` and `&#xHH;` in `s`.
pub fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[1..].find(|c: char| c == ';' || c == '&' || c == '<' || c.is_whitespace());
        let decoded = match end {
            Some(e) if e <= 10 && rest.as_bytes()[e + 1] == b';' => {
                let name = &rest[1..e + 1];
                let value = if let Some(num) = name.strip_prefix('#') {
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => num.parse::<u32>().ok(),
                    };
                    code.and_then(char::from_u32).map(String::from)
                } else {
                    ENTITIES
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| (*v).to_owned())
                };
                value.map(|v| (v, e + 2))
            }
            _ => None,
        };
        match decoded {
            Some((v, len)) => {
                out.push_str(&v);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// True for the class names mail clients give their quoted-history blocks.
fn is_quote_container(tag_body: &str) -> bool {
    let lower = tag_body.to_ascii_lowercase();
    [
        "gmail_quote",
        "yahoo_quoted",
        "moz-cite-prefix",
        "divrplyfwdmsg",
        "protonmail_quote",
        "zmail_extra",
    ]
    .iter()
    .any(|c| lower.contains(c))
}

/// Converts an HTML body to plain text lines. Quoted history becomes lines
/// starting with `> `.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut quote_depth = 0usize;
    // Stack of open elements that raised quote_depth, to lower it on close.
    let mut quote_stack: Vec<(String, usize)> = Vec::new();
    let mut skip_until: Option<String> = None;
    let mut at_line_start = true;
    let mut rest = html;

    let newline = |out: &mut String, at_line_start: &mut bool| {
        out.push('\n');
        *at_line_start = true;
    };

    while !rest.is_empty() {
        if let Some(lt) = rest.find('<') {
            let text = &rest[..lt];
            if skip_until.is_none() && !text.trim().is_empty() {
                let decoded =
                    decode_entities(&text.split_whitespace().collect::<Vec<_>>().join(" "));
                if at_line_start {
                    for _ in 0..quote_depth {
                        out.push_str("> ");
                    }
                    out.push_str(decoded.trim_start());
                } else {
                    if text.starts_with(char::is_whitespace) {
                        out.push(' ');
                    }
                    out.push_str(&decoded);
                }
                if text.ends_with(char::is_whitespace) {
                    out.push(' ');
                }
                at_line_start = false;
            }
            rest = &rest[lt..];
            // Comments and declarations.
            if rest.starts_with("<!--") {
                rest = rest.find("-->").map_or("", |e| &rest[e + 3..]);
                continue;
            }
            let Some(gt) = rest.find('>') else { break };
            let tag = &rest[1..gt];
            rest = &rest[gt + 1..];
            let closing = tag.starts_with('/');
            let tag_body = tag.trim_start_matches('/');
            let name: String = tag_body
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            if name.is_empty() {
                continue;
            }
            if let Some(skip) = &skip_until {
                if closing && *skip == name {
                    skip_until = None;
                }
                continue;
            }
            if !closing && SKIPPED.contains(&name.as_str()) && !tag_body.ends_with('/') {
                skip_until = Some(name);
                continue;
            }
            // A block starts a line unless one is already started; <br>
            // always ends one (blank lines matter between fields).
            if name == "br" || (BLOCKS.contains(&name.as_str()) && !at_line_start) {
                newline(&mut out, &mut at_line_start);
            } else if name == "td" || name == "th" {
                out.push(' ');
            }
            if !closing && (name == "blockquote" || (name == "div" && is_quote_container(tag_body)))
            {
                quote_depth += 1;
                quote_stack.push((name, 1));
            } else if !closing && name == "div" {
                // Count nested divs inside a quote container so its end is found.
                if let Some(top) = quote_stack.last_mut() {
                    if top.0 == "div" {
                        top.1 += 1;
                    }
                }
            } else if closing {
                if let Some(top) = quote_stack.last_mut() {
                    if top.0 == name {
                        top.1 -= 1;
                        if top.1 == 0 {
                            quote_stack.pop();
                            quote_depth -= 1;
                        }
                    }
                }
            }
        } else {
            if skip_until.is_none() {
                if at_line_start {
                    for _ in 0..quote_depth {
                        out.push_str("> ");
                    }
                }
                out.push_str(&decode_entities(rest));
            }
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_and_breaks_become_lines() {
        let t = html_to_text("<html><body><p>Kính gửi,</p><p>+ Họ và tên: <b>Đặng Trung Du</b><br>+ Số điện thoại: 0775&nbsp;888 999</p></body></html>");
        let lines: Vec<&str> = t.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        assert_eq!(
            lines,
            [
                "Kính gửi,",
                "+ Họ và tên: Đặng Trung Du",
                "+ Số điện thoại: 0775 888 999"
            ]
        );
    }

    #[test]
    fn entities_decode() {
        assert_eq!(
            decode_entities("H&ocirc;m nay &#273;&#x1EB9;p &amp; &bogus; &"),
            "Hôm nay đẹp & &bogus; &"
        );
    }

    #[test]
    fn quotes_are_marked_and_scripts_dropped() {
        let t = html_to_text("<div>Mới</div><script>alert(1)</script><div class=\"gmail_quote\"><div>Cũ</div><blockquote>Rất cũ</blockquote></div><p>Sau</p>");
        let lines: Vec<&str> = t.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        assert_eq!(lines, ["Mới", "> Cũ", "> > Rất cũ", "Sau"]);
    }
}
