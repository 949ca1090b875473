"""Warning banners for tagged messages: why the message is suspicious, in one sentence and the
site's language, put at the top of what the reader sees without breaking MIME or signatures.

``warning_for(verdict, config)`` picks the finding that best explains the verdict and renders
the banner texts from templates the site can edit (``templates/banner/<language>/``, overridden
file by file from ``banner.template_dir``); ``apply_warning(raw, warning, config)`` returns the
marked message: a banner at the top of the text/plain and text/html alternatives of the main
body (in each part's own charset and transfer encoding), the subject prefixed once, and an
``X-Mailward-Warning`` field. The byte work is in ``banner_mime.py``.

Signatures. A message signed end to end (multipart/signed, multipart/encrypted,
application/pkcs7-mime, inline PGP) is wrapped, not edited: a new multipart/mixed with the
banner first and the original, byte for byte, as a message/rfc822 part, so its signature still
verifies. So is malformed MIME. A DKIM signature alone does not make a message wrapped (unless
``banner.wrap_dkim_signed``): DKIM protects the transport up to the site's border, the hub has
verified it before the banner is added and records the result in its own
Authentication-Results field, which is what the site's mailboxes and clients rely on. The
DKIM-Signature fields of an edited message are left untouched; they no longer verify on it.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import string
import tomllib
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from mailward import banner_mime
from mailward.banner_mime import Banner
from mailward.config import BannerConfig, Config, ConfigError
from mailward.lookalike import to_ascii
from mailward.model import Disposition, Finding, Verdict

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    import jinja2

log = logging.getLogger(__name__)

BUILTIN_LANGUAGE = "en"
TEXT_WIDTH = 76
HTML_LINE_LIMIT = 900  # longer lines of a rendered HTML banner are wrapped (RFC 5322: 998)
VALUE_LIMIT = 64  # characters of one attacker-controlled value shown in a sentence
# Identity findings that say who the sender pretends to be: they explain a verdict first.
# (Reply-To and Return-Path divergence are weaker hints and rank by score with the rest.)
_WEAK_IDENTITY = frozenset({"IDENTITY_REPLY_TO_DIVERGENT", "IDENTITY_RETURN_PATH_DIVERGENT"})
_NAMED_DOMAIN = re.compile(r"(?:domain|host|target|from)$")


@dataclass(frozen=True, slots=True)
class Warning:  # the hub's API name; shadows the builtin only inside this module
    """What to tell the reader about one tagged message, rendered in the site's language."""

    symbol: str  # the finding that explains it ("" when none does)
    reason: str  # one sentence, plain text (not escaped)
    advice: str  # that finding's advice from the check (English)
    score: float
    language: str
    inline: Banner  # put at the top of the message's own text
    wrapped: Banner  # heads a wrapped message (says the original is attached unchanged)

    @property
    def header(self) -> str:
        """The X-Mailward-Warning value: symbol, score and reason."""
        return f"{self.symbol or 'MAILWARD'}; score={self.score:.1f}; {self.reason}"


@dataclass(frozen=True, slots=True)
class Texts:
    """The banner templates and sentences of one language, as the site configured them."""

    language: str
    text: jinja2.Template
    html: jinja2.Template
    reasons: dict[str, str]
    requests: dict[str, str]
    standing_rule: str
    default_reason: str


# --- the API --------------------------------------------------------------------------------


def warning_for(verdict: Verdict, config: Config) -> Warning:
    """The warning for a verdict: the finding that best explains it, in one sentence, and the
    banners rendered from the configured templates (the built-in ones if the site's fail)."""
    cfg = config.banner
    try:
        return _warning(verdict, cfg, load_texts(cfg.template_dir, cfg.language))
    except Exception as exc:
        if not cfg.template_dir and cfg.language == BUILTIN_LANGUAGE:
            raise  # the built-in texts are broken: a bug, not a site's mistake
        try:  # the built-in texts of the language if there are, else the English ones
            texts = load_texts("", cfg.language if cfg.template_dir else BUILTIN_LANGUAGE)
        except ConfigError:
            texts = load_texts("", BUILTIN_LANGUAGE)
        log.error("banner texts %s/%s unusable (%s); using the built-in %s texts",
                  cfg.template_dir or "built-in", cfg.language, exc, texts.language)
        return _warning(verdict, cfg, texts)


def apply_warning(raw: bytes, warning: Warning, config: Config) -> bytes:
    """The message marked with the warning (see the module docstring); ``raw`` unchanged when
    banners are disabled. Never raises: what cannot be edited safely is wrapped."""
    cfg = config.banner
    if not cfg.enabled:
        return raw
    return banner_mime.mark(
        raw, warning.inline, warning.wrapped, warning.header, cfg.subject_prefix,
        cfg.wrap_dkim_signed,
    )


def check_texts(config: Config) -> None:
    """Load and try the configured banner texts; ConfigError naming the problem (for startup
    and `mailward config`), so that a site's typo is not found on the first tagged message."""
    cfg = config.banner
    texts = load_texts(cfg.template_dir, cfg.language)
    try:
        _warning(Verdict(Disposition.TAG, 0.0, [], []), cfg, texts)
    except Exception as exc:
        raise ConfigError(f"banner templates for {cfg.language!r}: {exc}") from None


# --- choosing and wording the reason --------------------------------------------------------


def explaining_findings(findings: list[Finding]) -> list[Finding]:
    """Findings that raise the score, best explanation first: those with advice for the
    reader, impersonation (identity) findings before the others, then by score."""
    positive = [f for f in findings if f.score > 0]

    def rank(f: Finding) -> tuple[bool, bool, float]:
        strong_identity = f.check == "identity" and f.symbol not in _WEAK_IDENTITY
        return bool(f.advice), strong_identity, f.score

    return sorted(positive, key=rank, reverse=True)


def reason_for(findings: list[Finding], texts: Texts) -> tuple[Finding | None, str]:
    """(the explaining finding, its sentence); the first finding in rank order whose sentence
    can be filled in with its data, else (None, the default sentence)."""
    for finding in explaining_findings(findings):
        sentence = sentence_for(finding, texts)
        if sentence:
            return finding, sentence
    return None, texts.default_reason


def sentence_for(finding: Finding, texts: Texts) -> str:
    """The finding's sentence with its data filled in ('' when none fits)."""
    values = finding_values(finding)
    if "request" in values:
        values["request"] = texts.requests.get(dict(finding.properties)["request"], "")
    for key in _sentence_keys(finding, values):
        template = texts.reasons.get(key)
        if not template:
            continue
        sentence = string.Template(template)
        if all(values.get(name) for name in sentence.get_identifiers()):
            return clean(sentence.safe_substitute(values), limit=600)
    return ""


def finding_values(finding: Finding) -> dict[str, str]:
    """A finding's properties as template values: ``display.name`` becomes ``display_name``;
    addresses also give ``<name>_domain``, domains ``<name>_ascii`` (their punycode form, so a
    homoglyph domain is shown as what it is). Values are cleaned and shortened."""
    out: dict[str, str] = {}
    for key, value in finding.properties:
        name = re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")
        if not name or name in out:
            continue
        out[name] = clean(value)
        if "@" in value:
            out[f"{name}_domain"] = clean(value.rpartition("@")[2])
        if _NAMED_DOMAIN.search(name):
            out.setdefault(f"{name}_domain", out[name])
            out[f"{name}_ascii"] = clean(to_ascii(value))
    if finding.reason:
        out.setdefault("kind", clean(finding.reason))
    return out


def _sentence_keys(finding: Finding, values: dict[str, str]) -> list[str]:
    symbol = finding.symbol
    keys = []
    if symbol == "IDENTITY_DISPLAY_NAME_PROTECTED":
        if finding.reason == "not authenticated as the site":
            keys.append(f"{symbol}.inside")
        elif _folded(values.get("display_name", "")) != _folded(values.get("identity_name", "")):
            keys.append(f"{symbol}.imitation")
        return [*keys, symbol, f"{symbol}.no_address"]
    if symbol in ("IDENTITY_LOOKALIKE_DOMAIN", "IDENTITY_HOMOGLYPH_DOMAIN"):
        header = values.get("lookalike_header", "").lower().replace("-", "_")
        if header in ("reply_to", "return_path"):
            keys.append(f"{symbol}.{header}")
    return [*keys, symbol]


def clean(value: str, limit: int = VALUE_LIMIT) -> str:
    """Text safe to show: control and format characters (line breaks, bidi overrides,
    zero-width characters) become spaces, runs of white space one, at most ``limit``
    characters. HTML escaping is the template's business."""
    value = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in value)
    value = " ".join(value.split())
    if len(value) > limit:
        value = value[: limit - 1].rstrip() + "…"
    return value


def _folded(text: str) -> str:
    return " ".join(text.casefold().split())


# --- rendering ------------------------------------------------------------------------------


def _warning(verdict: Verdict, cfg: BannerConfig, texts: Texts) -> Warning:
    finding, reason = reason_for(verdict.findings, texts)
    rule = cfg.standing_rule
    if rule == _default_standing_rule():
        rule = texts.standing_rule or rule
    context: dict[str, object] = {
        "reason": reason,
        "standing_rule": rule,
        "report_address": cfg.report_address,
        "report_url": cfg.report_url,
        "symbol": finding.symbol if finding else "",
        "advice": clean(finding.advice, limit=1000) if finding else "",
        "language": texts.language,
    }
    return Warning(
        symbol=finding.symbol if finding else "",
        reason=reason,
        advice=finding.advice if finding else "",
        score=verdict.score,
        language=texts.language,
        inline=_render(texts, context, wrapped=False),
        wrapped=_render(texts, context, wrapped=True),
    )


def _render(texts: Texts, context: dict[str, object], wrapped: bool) -> Banner:
    values = {**context, "wrapped": wrapped}
    return Banner(
        text=tidy_text(texts.text.render(values)), html=tidy_html(texts.html.render(values))
    )


def tidy_text(rendered: str) -> str:
    """Lines without trailing blanks, wrapped at 76 columns, no blank lines at either end,
    and one empty line after (it separates the banner from the message's text)."""
    lines: list[str] = []
    for line in rendered.splitlines():
        line = line.rstrip()
        if len(line) <= TEXT_WIDTH:
            lines.append(line)
            continue
        lines += wrap_line(line, TEXT_WIDTH)
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n\n"


def wrap_line(line: str, width: int) -> list[str]:
    """``line`` broken at spaces into lines of at most ``width`` characters where possible
    (a longer word stays whole), continuation lines indented like the first."""
    indent = line[: len(line) - len(line.lstrip())]
    out: list[str] = []
    current = indent
    for word in line.split():
        if len(current) > len(indent) and len(current) + 1 + len(word) > width:
            out.append(current)
            current = indent
        current += (" " if len(current) > len(indent) else "") + word
    out.append(current)
    return out


def tidy_html(rendered: str) -> str:
    """The rendered fragment without blank lines; a line too long for 7bit/8bit transport is
    broken at spaces (white space is white space in HTML)."""
    lines: list[str] = []
    for line in rendered.splitlines():
        line = line.rstrip()
        if not line.strip():
            continue
        if len(line.encode("utf-8")) > HTML_LINE_LIMIT:
            lines += wrap_line(line, TEXT_WIDTH)
        else:
            lines.append(line)
    return "\n".join(lines)


# --- loading the texts ----------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def load_texts(template_dir: str, language: str) -> Texts:
    """The texts of ``language``: each file from ``template_dir/<language>/`` if there, else
    the built-in one of that language, else the built-in English one; sentences missing from
    a reasons.toml come from the next file in that order. Read once per process."""
    import jinja2

    site = Path(template_dir) if template_dir else None
    if site is not None and not site.is_dir():
        raise ConfigError(f"banner.template_dir: {template_dir} is not a directory")
    builtin = resources.files("mailward").joinpath("templates").joinpath("banner")
    if not builtin.joinpath(language).is_dir() and not (
        site is not None and (site / language).is_dir()
    ):
        raise ConfigError(f"banner.language: no banner texts for {language!r}")

    def source(name: str) -> str | None:
        for candidate in _candidates(site, builtin, language, name):
            if candidate.is_file():
                try:
                    return candidate.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise ConfigError(f"banner texts: cannot read {candidate}: {exc}") from None
        return None

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(source),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",),
                                            default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    try:
        text = env.get_template("banner.txt")
        html = env.get_template("banner.html")
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(
            f"banner template {exc.name or ''} line {exc.lineno}: {exc.message}"
        ) from None
    except jinja2.TemplateNotFound as exc:
        raise ConfigError(f"banner template {exc.name} not found") from None
    merged: dict[str, object] = {"reason": {}, "request": {}}
    for candidate in reversed(_candidates(site, builtin, language, "reasons.toml")):
        if candidate.is_file():
            _merge(merged, _read_toml(candidate))
    reasons, requests = merged["reason"], merged["request"]
    assert isinstance(reasons, dict) and isinstance(requests, dict)
    return Texts(
        language=language,
        text=text,
        html=html,
        reasons={str(k): str(v) for k, v in reasons.items()},
        requests={str(k): str(v) for k, v in requests.items()},
        standing_rule=str(merged.get("standing_rule", "")),
        default_reason=str(merged.get("default", "")),
    )


def _candidates(
    site: Path | None, builtin: Traversable, language: str, name: str
) -> list[Traversable]:
    """Files to try for ``name``, first found wins: site, built-in, built-in English."""
    out: list[Traversable] = [site / language / name] if site is not None else []
    out.append(builtin.joinpath(language).joinpath(name))
    if language != BUILTIN_LANGUAGE:
        out.append(builtin.joinpath(BUILTIN_LANGUAGE).joinpath(name))
    return out


def _read_toml(path: Traversable) -> dict[str, object]:
    try:
        data: dict[str, object] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"banner texts: {path}: {exc}") from None
    for table in ("reason", "request"):
        if not isinstance(data.get(table, {}), dict):
            raise ConfigError(f"banner texts: {path}: [{table}] must be a table")
    return data


def _merge(into: dict[str, object], data: dict[str, object]) -> None:
    for key, value in data.items():
        if isinstance(value, dict):
            target = into.setdefault(key, {})
            assert isinstance(target, dict)
            target.update(value)
        else:
            into[key] = value


def _default_standing_rule() -> str:
    return str(next(f.default for f in dataclasses.fields(BannerConfig)
                    if f.name == "standing_rule"))
