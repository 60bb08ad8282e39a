"""A grammar of licence markup and wording, for the held-out licence gate (tests/test_license_heldout.py).

Each case is a whole page (header, article, footer) built from parts chosen by a seeded RNG: the licence (9 CC
licences), how it is named (deed name in the page's language, abbreviation, link only), how it is linked (plain
<a href>, rel=license, none, badge plus text, protocol-less, deed/legalcode suffixes), the sentence frame (blog
footers and the CC chooser wording in 12 languages, written for this grammar, not taken from the tagger's cue
lists), and where it sits (footer element, footer div, copyright div, end of article, sidebar). Negative and
hard cases: image/map/audio/theme/plugin credits, bare badges, licence discussion, copyright-only footers,
software licences, conflicting metas, page licence plus a differently licensed photo, and licences stated only
in metas, RDFa or microdata. Every case carries its label: ``page`` (+ SPDX id), ``media``, ``none`` or
``conflict`` (+ the most restrictive candidate).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

LICENSES = [  # spdx, url code, version, elements
    ("CC-BY-4.0", "by", "4.0", ("by",)),
    ("CC-BY-SA-4.0", "by-sa", "4.0", ("by", "sa")),
    ("CC-BY-NC-4.0", "by-nc", "4.0", ("by", "nc")),
    ("CC-BY-NC-SA-4.0", "by-nc-sa", "4.0", ("by", "nc", "sa")),
    ("CC-BY-ND-4.0", "by-nd", "4.0", ("by", "nd")),
    ("CC-BY-NC-ND-4.0", "by-nc-nd", "4.0", ("by", "nc", "nd")),
    ("CC-BY-3.0", "by", "3.0", ("by",)),
    ("CC-BY-SA-3.0", "by-sa", "3.0", ("by", "sa")),
    ("CC-BY-SA-2.5", "by-sa", "2.5", ("by", "sa")),
]

# Deed names per language: element words, joiner, the word after 4.0 ("International"), 3.0 ("Unported").
DEEDS = {
    "en": (
        {"by": "Attribution", "nc": "NonCommercial", "sa": "ShareAlike", "nd": "NoDerivatives"},
        "-",
        "International",
    ),
    "es": (
        {"by": "Atribución", "nc": "NoComercial", "sa": "CompartirIgual", "nd": "SinDerivadas"},
        "-",
        "Internacional",
    ),
    "de": (
        {
            "by": "Namensnennung",
            "nc": "Nicht kommerziell",
            "sa": "Weitergabe unter gleichen Bedingungen",
            "nd": "Keine Bearbeitungen",
        },
        " - ",
        "International",
    ),
    "fr": (
        {
            "by": "Attribution",
            "nc": "Pas d'Utilisation Commerciale",
            "sa": "Partage dans les Mêmes Conditions",
            "nd": "Pas de Modification",
        },
        " - ",
        "International",
    ),
    "it": (
        {"by": "Attribuzione", "nc": "Non commerciale", "sa": "Condividi allo stesso modo", "nd": "Non opere derivate"},
        " - ",
        "Internazionale",
    ),
    "pt": (
        {"by": "Atribuição", "nc": "NãoComercial", "sa": "CompartilhaIgual", "nd": "SemDerivações"},
        "-",
        "Internacional",
    ),
    "nl": (
        {"by": "Naamsvermelding", "nc": "NietCommercieel", "sa": "GelijkDelen", "nd": "GeenAfgeleideWerken"},
        "-",
        "Internationaal",
    ),
    "pl": (
        {
            "by": "Uznanie autorstwa",
            "nc": "Użycie niekomercyjne",
            "sa": "Na tych samych warunkach",
            "nd": "Bez utworów zależnych",
        },
        " - ",
        "Międzynarodowe",
    ),
    "ru": (
        {
            "by": "«Атрибуция»",
            "nc": "«Некоммерческое использование»",
            "sa": "«На тех же условиях»",
            "nd": "«Без производных произведений»",
        },
        " ",
        "Всемирная",
    ),
    "ja": ({"by": "表示", "nc": "非営利", "sa": "継承", "nd": "改変禁止"}, " - ", "国際"),
    "zh": ({"by": "署名", "nc": "非商业性使用", "sa": "相同方式共享", "nd": "禁止演绎"}, "-", "国际"),
    "ko": ({"by": "저작자표시", "nc": "비영리", "sa": "동일조건변경허락", "nd": "변경금지"}, "-", "국제"),
}
CC_WORD = {"ja": "クリエイティブ・コモンズ", "zh": "知识共享", "ko": "크리에이티브 커먼즈"}

# Page statements per language; {L} is the licence (linked or not). Written as blogs and sites word them.
PAGE_FRAMES = {
    "en": [
        "This work is licensed under a {L}.",
        "Except where otherwise noted, content on this site is licensed under a {L}.",
        "The articles on this blog are available under {L}.",
        "All text on this website is published under the {L}.",
        "Unless stated otherwise, the posts here are released under {L}.",
        "You are free to share the writing on this blog under the terms of {L}.",
        "Licensed under {L}.",
        "Content licensed {L}.",
        "This blog by Maria Lopez is licensed under {L}.",
        "Text and photos on this site: {L}.",
    ],
    "es": [
        "Esta obra está bajo una licencia de {L}.",
        "Los artículos de este blog están disponibles bajo {L}.",
        "Salvo que se indique lo contrario, el contenido de este sitio se publica bajo licencia {L}.",
    ],
    "de": [
        "Dieses Werk ist lizenziert unter einer {L} Lizenz.",
        "Sofern nicht anders angegeben, stehen die Inhalte dieser Website unter der Lizenz {L}.",
        "Alle Texte dieses Blogs sind unter {L} veröffentlicht.",
    ],
    "fr": [
        "Cette œuvre est mise à disposition selon les termes de la Licence {L}.",
        "Sauf mention contraire, le contenu de ce site est sous licence {L}.",
        "Les articles de ce blog sont publiés sous {L}.",
    ],
    "it": [
        "Quest'opera è distribuita con Licenza {L}.",
        "Salvo diversa indicazione, i contenuti di questo sito sono rilasciati sotto licenza {L}.",
    ],
    "pt": ["Este trabalho está licenciado com uma Licença {L}.", "O conteúdo deste site está disponível sob {L}."],
    "nl": ["Dit werk valt onder een {L}-licentie.", "Tenzij anders vermeld valt de inhoud van deze website onder {L}."],
    "pl": ["Ten utwór jest dostępny na licencji {L}.", "Treści na tej stronie są dostępne na licencji {L}."],
    "ru": ["Это произведение доступно по лицензии {L}.", "Материалы сайта доступны по лицензии {L}."],
    "ja": ["この作品は{L}ライセンスの下に提供されています。", "このブログの記事は{L}で提供されています。"],
    "zh": ["本作品采用{L}许可协议进行许可。", "本站文章除注明外均采用{L}。"],
    "ko": ["이 저작물은 {L} 라이선스에 따라 이용할 수 있습니다."],
}
ARTICLE_TEXT = {
    "en": "The river rose overnight and the bridge was closed until noon. Volunteers filled sandbags along the bank.",
    "es": "El río creció durante la noche y el puente estuvo cerrado hasta el mediodía.",
    "de": "Der Fluss stieg über Nacht, und die Brücke blieb bis zum Mittag gesperrt.",
    "fr": "La rivière est montée pendant la nuit et le pont est resté fermé jusqu'à midi.",
    "it": "Il fiume è salito durante la notte e il ponte è rimasto chiuso fino a mezzogiorno.",
    "pt": "O rio subiu durante a noite e a ponte ficou fechada até ao meio-dia.",
    "nl": "De rivier steeg 's nachts en de brug bleef tot de middag dicht.",
    "pl": "Rzeka wezbrała w nocy i most był zamknięty do południa.",
    "ru": "Река поднялась за ночь, и мост был закрыт до полудня.",
    "ja": "川は一晩で増水し、橋は正午まで閉鎖された。",
    "zh": "河水一夜之间上涨，桥梁一直关闭到中午。",
    "ko": "강물이 밤새 불어나 다리는 정오까지 통제되었다.",
}
MEDIA_CREDITS = [  # (html placed in a figure caption or the footer, licence spdx it names or None)
    ('Photo: Jan Novak, <a href="{url}">{abbr}</a>', True),
    ("Header image “Dawn over the bay” by K. Ito is licensed under {abbr}.", True),
    ('Map data © <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors, ODbL', False),
    ("WordPress theme licensed under the GNU GPL v2.", False),
    ('Music: “Blue Hour” by Lena Park (<a href="{url}">{abbr}</a>)', True),
    ("Icons by Glyphish, {abbr}.", True),
    ("This plugin is released under {abbr}.", True),
    ('Cover photo © Ruth Abe, licensed <a href="{url}">{abbr}</a>', True),
]
DISCUSSION = [
    "<p>The {a} licence lets others remix a work, while {b} forbids derivatives, and {c} rules out commercial use. "
    "Choosing between them depends on how you want your work reused.</p>",
    "<p>Many museums now publish images under {a}; critics argue that {b} would serve artists better.</p>",
]
NONE_FOOTERS = [
    "© 2021 Harbor Press. All rights reserved.",
    "Copyright 2019-2023 Acme Widgets Ltd.",
    "Powered by WordPress. Theme by Themify.",
    "We support Creative Commons and open knowledge.",
    "Source code on GitHub under the MIT License.",
    "Impressum · Datenschutz · © 2022 Müller GmbH",
]


@dataclass
class Case:
    """One generated page and its label."""

    name: str
    html: str
    expected_scope: str  # page | media | none | conflict
    expected_spdx: str
    kind: str


def _url(rng: random.Random, code: str, ver: str, lang: str) -> str:
    base = rng.choice(["https://creativecommons.org", "http://creativecommons.org", "//creativecommons.org"])
    tail = rng.choice(["/", "/", f"/deed.{lang}", "/legalcode", "/deed.en"])
    return f"{base}/licenses/{code}/{ver}{tail}"


def _name(rng: random.Random, lang: str, elements: tuple[str, ...], ver: str) -> str:
    words, joiner, intl = DEEDS[lang]
    suffix = f" {ver} {intl}" if ver == "4.0" else (f" {ver} Unported" if ver == "3.0" and lang == "en" else f" {ver}")
    return f"{CC_WORD.get(lang, 'Creative Commons')} {joiner.join(words[e] for e in elements)}{suffix}"


def _abbr(rng: random.Random, code: str, ver: str) -> str:
    form = rng.choice(["CC {C} {V}", "CC-{C} {V}", "CC {C} {V} International", "(CC {C} {V})"])
    if ver != "4.0":
        form = form.replace(" International", "")
    return form.replace("{C}", code.upper()).replace("{V}", ver)


def _page(lang: str, head: str, article: str, footer: str, container: str) -> str:
    text = ARTICLE_TEXT[lang]
    foot = {
        "footer": f"<footer><p>{footer}</p></footer>",
        "footer-div": f'<div id="site-footer" class="footer"><div class="inner">{footer}</div></div>',
        "copyright-div": f'<div class="copyright"><small>{footer}</small></div>',
        "article-end": "",
        "sidebar": f'<aside class="widget"><p>{footer}</p></aside>',
    }[container]
    tail = f"<p>{footer}</p>" if container == "article-end" else ""
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>Notes</title>{head}</head><body>'
        f'<header><nav><a href="/">Home</a> <a href="/about">About</a></nav></header>'
        f"<main><article><h1>Notes</h1><p>{text}</p>{article}{tail}</article></main>{foot}</body></html>"
    )


def generate(seed: int = 14, n_page: int = 160) -> list[Case]:
    """The held-out cases: ``n_page`` page-licence statements and a fixed mix of hard negatives and variants."""
    rng = random.Random(seed)
    cases: list[Case] = []
    for i in range(n_page):
        lang = rng.choice(list(PAGE_FRAMES))
        spdx, code, ver, elements = rng.choice(LICENSES)
        frame = rng.choice(PAGE_FRAMES[lang])
        naming = rng.choice(["name", "name", "abbr"])
        words = _name(rng, lang, elements, ver) if naming == "name" else _abbr(rng, code, ver)
        link = rng.choice(["plain", "plain", "none", "rel", "badge"])
        url = _url(rng, code, ver, lang)
        if link == "none":
            lic = words
        elif link == "rel":
            lic = f'<a rel="license" href="{url}">{words}</a>'
        else:
            lic = f'<a href="{url}" target="_blank">{words}</a>'
        statement = frame.replace("{L}", lic)
        if link == "badge":
            badge = f"https://i.creativecommons.org/l/{code}/{ver}/88x31.png"
            statement = f'<a href="{url}"><img alt="Creative Commons License" src="{badge}"></a><br>{statement}'
        container = rng.choice(["footer", "footer-div", "copyright-div", "article-end", "sidebar"])
        cases.append(
            Case(
                f"page-{i:03d}-{lang}-{naming}-{link}-{container}",
                _page(lang, "", "", statement, container),
                "page",
                spdx,
                "page statement",
            )
        )
    for i in range(40):  # (c) a page licence plus a differently licensed photo or audio credit
        spdx, code, ver, elements = rng.choice(LICENSES[:6])
        other = rng.choice([x for x in LICENSES if x[0] != spdx])
        credit, _ = rng.choice([c for c in MEDIA_CREDITS if c[1]])
        credit = credit.replace("{url}", _url(rng, other[1], other[2], "en")).replace(
            "{abbr}", _abbr(rng, other[1], other[2])
        )
        article = f'<figure><img src="/p/{i}.jpg" alt=""><figcaption>{credit}</figcaption></figure>'
        name = _name(rng, "en", elements, ver)
        footer = rng.choice(
            [
                f'This work is licensed under a <a href="{_url(rng, code, ver, "en")}">{name}</a>.',
                f"Except where otherwise noted, content on this site is licensed under {name}.",
            ]
        )
        head = f'<link rel="license" href="{_url(rng, code, ver, "en")}">' if i % 3 == 0 else ""
        cases.append(
            Case(f"mixed-{i:02d}", _page("en", head, article, footer, "footer"), "page", spdx, "page + media exception")
        )
    for i in range(48):  # credits of media alone: never a page licence
        spdx, code, ver, _ = rng.choice(LICENSES)
        credit, has = MEDIA_CREDITS[i % len(MEDIA_CREDITS)]
        credit = credit.replace("{url}", _url(rng, code, ver, "en")).replace("{abbr}", _abbr(rng, code, ver))
        where = rng.choice(["figure", "footer"])
        if where == "figure":
            page = _page(
                "en",
                "",
                f'<figure><img src="/m/{i}.jpg" alt=""><figcaption>{credit}</figcaption></figure>',
                "© 2020 River Weekly",
                "footer",
            )
        else:
            page = _page("en", "", "", f"© 2020 River Weekly. {credit}", "footer")
        cases.append(Case(f"media-{i:02d}-{where}", page, "media" if has else "none", "", "media credit"))
    for i in range(16):  # bare badges: scope undecidable
        spdx, code, ver, _ = rng.choice(LICENSES)
        badge = f'<a href="{_url(rng, code, ver, "en")}"><img src="https://licensebuttons.net/l/{code}/{ver}/80x15.png" alt=""></a>'
        cases.append(
            Case(
                f"badge-{i:02d}",
                _page("en", "", "", badge, rng.choice(["footer", "sidebar"])),
                "none",
                "",
                "bare badge",
            )
        )
    for i in range(16):  # licence discussion in the article
        picks = rng.sample(LICENSES, 3)
        forms = [f'<a href="{_url(rng, p[1], p[2], "en")}">{_abbr(rng, p[1], p[2])}</a>' for p in picks]
        body = rng.choice(DISCUSSION).format(a=forms[0], b=forms[1], c=forms[2])
        cases.append(
            Case(
                f"discussion-{i:02d}",
                _page("en", "", body, rng.choice(NONE_FOOTERS[:2]), "footer"),
                "none",
                "",
                "licence discussion",
            )
        )
    for i, footer in enumerate(NONE_FOOTERS * 3):
        cases.append(
            Case(f"none-{i:02d}", _page(rng.choice(["en", "de"]), "", "", footer, "footer"), "none", "", "no licence")
        )
    for i in range(24):  # licences stated only in metas / RDFa / microdata
        spdx, code, ver, elements = rng.choice(LICENSES)
        url = _url(rng, code, ver, "en")
        words = rng.choice([_name(rng, "en", elements, ver), _abbr(rng, code, ver)])
        form = i % 6
        head, article = "", ""
        if form == 0:
            head = f'<meta name="dcterms.rights" content="This work is licensed under {words}">'
        elif form == 1:
            head = f'<meta name="DC.rights" content="{words}">'
        elif form == 2:
            article = f'<p><span property="dc:rights">Text: {words}</span></p>'
        elif form == 3:
            article = f'<div about="" rel="cc:license" resource="{url}"></div>'
        elif form == 4:
            head = f'<meta property="cc:license" content="{url}">'
        else:
            article = (
                f'<div itemscope itemtype="https://schema.org/BlogPosting"><link itemprop="license" href="{url}"></div>'
            )
        cases.append(
            Case(
                f"meta-{i:02d}-form{form}",
                _page("en", head, article, "© 2022 Notes", "footer"),
                "page",
                spdx,
                "meta/RDFa/microdata",
            )
        )
    for i in range(6):  # microdata licence of an image object: media
        spdx, code, ver, _ = rng.choice(LICENSES)
        article = (
            f'<div itemscope itemtype="https://schema.org/ImageObject"><img itemprop="contentUrl" src="/a.jpg">'
            f'<link itemprop="license" href="{_url(rng, code, ver, "en")}"></div>'
        )
        cases.append(
            Case(f"imageobject-{i}", _page("en", "", article, "© 2022 Notes", "footer"), "media", "", "media microdata")
        )
    for i in range(12):  # conflicting page signals: the most restrictive is shown
        a, b = rng.sample(LICENSES[:6], 2)
        worst = max((a, b), key=lambda x: (("nc" in x[3]) + ("nd" in x[3]), "nd" in x[3], "nc" in x[3], "sa" in x[3]))
        head = f'<meta name="license" content="{_url(rng, a[1], a[2], "en")}"><link rel="license" href="{_url(rng, b[1], b[2], "en")}">'
        if i % 2:
            head = f'<meta name="license" content="{_url(rng, a[1], a[2], "en")}">'
            footer = f'This work is licensed under a <a href="{_url(rng, b[1], b[2], "en")}">{_name(rng, "en", b[3], b[2])}</a>.'
        else:
            footer = "© 2024 Notes"
        cases.append(
            Case(f"conflict-{i:02d}", _page("en", head, "", footer, "footer"), "conflict", worst[0], "conflict")
        )
    return cases
