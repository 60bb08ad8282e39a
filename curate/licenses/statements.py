"""Licence statements in words: what a sentence naming a licence says the licence covers.

``classify(text, start, footer=…)`` reads the clause of ``text`` (lower-cased) before a licence name at
``start`` and returns the scope that name has there: ``page`` when the clause says the page's text is licensed
("This work is licensed under …", "Except where otherwise noted, content on this site …", "Los artículos de este
blog están disponibles bajo …", "Dieses Werk ist lizenziert unter …", "本作品采用…"), ``partial`` for part of the
text ("this section …"), ``media`` for credits of images, maps, audio, themes, plugins or code ("Photo: X, CC
BY-SA", "Map data © OpenStreetMap contributors"), and ``unknown`` otherwise (a licence named in passing, in
quotes, or in a title-by-author credit). In a footer (or a block marked as the licence or copyright notice), a
licensing phrase or a copyright sign is enough for ``page`` when the clause has no subject of its own ("Licensed
under …", "© 2024 Jane Doe · CC BY 4.0"; not "Ito is licensed under …"); elsewhere the clause must name the page, its text or
the site. The cue lists hold the wording of the CC deeds and chooser and of common blog footers in about fifteen
languages; a clause in another language falls back to ``unknown``, never to ``page``.
"""

from __future__ import annotations

import re

from curate.schema import LicenseScope

# Clause ends: sentence punctuation (not the dot of a version number), separators of footer items.
CLAUSE_END = re.compile(r"(?<!\d)(?<!(?<![a-z])[a-z])\.(?!\d)|[;!?。；|•·\n]")  # not "4.0", not "K. Ito"

_W = r"(?<![\w])(?:{})(?![\w])"  # whole words in scripts that separate words
TEXT_NOUNS = re.compile(
    _W.format(
        r"texts?|textes?|content|contents|articles?|posts?|blog ?posts?|writings?|essays?|stories|entries|documentation|"
        r"this (?:work|book|document|page|publication|material|wiki|entry|story|transcript)|"
        r"textos?|contenidos?|art[ií]culos?|entradas|publicaciones|(?:esta|la) obra|este trabajo|"
        r"inhalte?|beitr[aä]ge|artikel|(?:dieses|das) werk|textinhalte|"
        r"contenus?|billets?|(?:cette|l.)(?:\s)?(?:œuvre|oeuvre)|"
        r"testi|testo|contenuti|contenuto|articoli|quest.opera|(?:quest|l).opera|"
        r"conte[uú]dos?|artigos|(?:este|o) trabalho|"
        r"tekst(?:en)?|inhoud|artikelen|(?:dit|het) werk|berichten|"
        r"tre[sś][cć]i?|teksty|artyku[lł]y|(?:ten|niniejszy) utw[oó]r|materia[lł]y|"
        r"текст\w*|материал\w*|стать[яию]\w*|произведени\w*|контент\w*|содержим\w*|публикаци\w*"
    )
    + r"|作品|記事|文章|テキスト|コンテンツ|本文|内容|內容|博文|저작물|콘텐츠|게시물"
)
SITE_CUES = re.compile(
    _W.format(
        r"this (?:site|website|web ?site|blog|weblog|page|journal|podcast|newsletter)|"
        r"unless (?:otherwise |explicitly )?(?:noted|stated|indicated|specified|mentioned|marked)|"
        r"except (?:where|when|as|if) (?:otherwise )?(?:noted|stated|indicated|specified|mentioned)|"
        r"(?:este|el) (?:sitio|blog|sitio web)|esta (?:web|p[aá]gina|bit[aá]cora)|"
        r"salvo (?:que se indique|indicaci[oó]n|donde se indique)|excepto (?:donde|que|cuando) se indique|"
        r"diese[rsm]? (?:seite|website|webseite|blogs?|angebots?|internetseite)|(?:so|sofern|soweit|wenn) nicht anders|"
        r"ce (?:site|blog)|cette page|sauf (?:mention|indication) contraire|"
        r"questo (?:sito|blog)|questa pagina|salvo (?:diversa indicazione|ove diversamente)|"
        r"ove non (?:diversamente|altrimenti)|"
        r"este (?:site|s[ií]tio|blog)|esta p[aá]gina|salvo indica[cç][aã]o|exceto (?:onde|quando)|"
        r"deze (?:site|website|blog|pagina)|dit weblog|tenzij anders|"
        r"ta strona|ten (?:blog|serwis)|o ile nie (?:zaznaczono|wskazano)|"
        r"(?:этот|данный|наш) (?:сайт|блог)|материалы сайта|если не указано иное"
    )
    + r"|このサイト|本サイト|当サイト|このブログ|特に(?:記載|断り)|本站|本网站|本網站|本博客|本部落格|除非另有|"
    r"이 (?:사이트|블로그)|별도(?:의)? (?:표시|언급)"
)
PART_CUES = re.compile(
    _W.format(
        r"this (?:section|chapter|excerpt|quote|quotation|translation|paragraph|table|appendix|part)|"
        r"(?:the )?following (?:text|section|excerpt)|portions? of|parts? of|excerpts?|"
        r"esta secci[oó]n|este cap[ií]tulo|dieser (?:abschnitt|auszug)|cette section|ce chapitre"
    )
)
MEDIA_NOUNS = re.compile(
    _W.format(
        r"photos?|photographs?|photography|images?|pictures?|pics?|illustrations?|icons?|logos?|graphics?|"
        r"drawings?|artworks?|cover|banners?|header|thumbnails?|screenshots?|maps?|map data|tiles|openstreetmap|"
        r"videos?|audio|music|songs?|sounds?|recordings?|footage|fonts?|typefaces?|themes?|plugins?|templates?|"
        r"software|source code|code|scripts?|librar(?:y|ies)|widgets?|emojis?|clip ?art|diagrams?|charts?|"
        r"figures?|infographics?|gifs?|animations?|models?|data|datasets?|databases?|credits?|courtesy|"
        r"fotos?|fotograf[ií]as?|im[aá]gen(?:es)?|ilustraci[oó]n(?:es)?|iconos?|mapas?|v[ií]deos?|m[uú]sica|"
        r"tema|plantilla|c[oó]digo|bilder?|abbildungen?|grafiken?|karten?|kartendaten|musik|schriftarten?|"
        r"vorlage|quellcode|ic[oô]nes?|cartes?|vid[eé]os?|musique|polices?|th[eè]me|immagin[ei]|illustrazioni|"
        r"icone|mappe?|codice|imagens?|ilustra[cç][oõ]es|[ií]cones|afbeeldingen?|kaart(?:en)?|muziek|thema|"
        r"zdj[eę]ci\w*|obraz\w*|grafik\w*|wideo|muzyk\w*|motyw|фото\w*|изображени\w*|картинк\w*|"
        r"иллюстраци\w*|карт[аыу]|видео|музык\w*|шрифт\w*|тем[аы]|код"
    )
    + r"|写真|画像|イラスト|地図|動画|图片|照片|图像|圖片|地图|地圖|视频|視頻|사진|이미지|지도|동영상"
)
# A licensing phrase (the licence's own name usually carries one: "… International License").
FRAME = re.compile(
    r"licen[cs]|lizen[sz]|лиценз|licencj|ライセンス|许可|許可|授权|授權|라이선스|이용허락|"
    + _W.format(
        r"under|bajo|sous|unter|sob|onder|pod|selon|según|secondo|available|disponible|disponibile|"
        r"dispon[ií]vel|verf[uü]gbar|beschikbaar|released|published|distributed|shared|"
        r"ver[oö]ffentlicht|publicad[oa]s?|publi[eé]e?s?|pubblicat[oi]|rilasciat[oi]|distribuit[oa]"
    )
    + r"|©|&copy;|\(c\)|copyright|提供|采用|採用"
)
# "“Title” by Author is licensed …": a credit of one named work, not a statement about the page.
CREDIT_SHAPE = re.compile(
    r"[“\"«„][^”\"»“]{1,160}[”\"»“]|(?<![\w])(?:by|von|door|par|di) \w|(?<![\w])(?:via|source|quelle|fuente)\s?:?"
)
QUOTE_BEFORE = re.compile(r"[“\"«„][^”\"»“]*$")
# A copula: the clause has a subject of its own ("X is licensed …"); unless a cue named it, it is not the page.
SUBJECT = re.compile(_W.format(r"is|are|was|were|est|sont|ist|sind|está|están|es|son|é|são|è|sono|jest|są|zijn|is"))


def clause_before(text: str, start: int) -> str:
    """The clause of ``text`` that ends at ``start``: back to the last sentence end or footer separator."""
    head = text[max(0, start - 300) : start]
    ends = list(CLAUSE_END.finditer(head))
    return head[ends[-1].end() :] if ends else head


def classify(text: str, start: int, end: int, *, footer: bool) -> str:
    """The scope of the licence named at ``text[start:end]`` (``text`` lower-cased), from the wording before it."""
    clause = clause_before(text, start)
    after = text[end : end + 40]
    if PART_CUES.search(clause):
        return LicenseScope.PARTIAL.value
    text_cue = TEXT_NOUNS.search(clause)
    media = MEDIA_NOUNS.search(clause)
    if media and not (text_cue and text_cue.start() < media.start()):  # the first noun is the subject
        return LicenseScope.MEDIA.value
    if QUOTE_BEFORE.search(clause):  # the licence named inside a quotation: discussion, not a statement
        return LicenseScope.UNKNOWN.value
    if text_cue or SITE_CUES.search(clause):
        return LicenseScope.PAGE.value
    if CREDIT_SHAPE.search(clause):
        return LicenseScope.UNKNOWN.value
    if (
        footer
        and not SUBJECT.search(clause)
        and (FRAME.search(clause) or FRAME.search(text[start:end]) or FRAME.search(after))
    ):
        return LicenseScope.PAGE.value
    return LicenseScope.UNKNOWN.value
