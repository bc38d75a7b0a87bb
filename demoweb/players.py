"""The demo web's scripted players: film pages whose video exists only once a script runs.

Served by ``demoweb.world.DemoWeb``: film pages on the link site under ``/lecteur/SLUG``
(listed on ``/lecteurs``), their player pieces on the video host. None of them writes a
media URL in its HTML, so the static resolvers find nothing and the browser resolver
(``crawlers.browser``) must run the page: a base64-assembled ``<video>`` source, sources
from a POST to the host's API, a packed ``eval(function(p,a,c,k,e,d)…)`` script, a
click-to-play overlay (that also opens a popup, as real ones do), a nested iframe whose
inner player refuses requests without the right ``Referer``, a countdown download page,
and a MediaSource player fed from an HLS manifest (``blob:`` source).
"""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Player:
    slug: str
    title: str
    kind: str
    media: str          # path on the video host the browser must record
    expect_title: str = "Big Buck Bunny"


PLAYERS: list[Player] = [
    Player("bbb-base64", "Big Buck Bunny (2008) streaming lecteur 1", "base64", "/v/bbb1.mp4"),
    Player("bbb-api", "Big Buck Bunny VF lecteur API", "api", "/v/bbb2.mp4"),
    Player("bbb-packed", "Big Buck Bunny VOSTFR lecteur packed", "packed", "/v/bbb3.mp4"),
    Player("bbb-overlay", "Big Buck Bunny HD cliquez pour lire", "overlay", "/v/bbb4.mp4"),
    Player("bbb-nested", "Le Grand Lapin lecteur externe", "nested", "/v/bbb1.mp4"),
    Player("bbb-countdown", "Big Buck Bunny telechargement direct", "countdown", "/v/bbb2.mp4"),
    Player("calais-mse", "Grand Prix Calais 1906 lecteur HLS", "mse", "/hls/cal1/index.m3u8",
           expect_title="Grand Prix de l'ACF, Calais 1906"),
]


def pack(source: str) -> str:
    """``source`` as Dean Edwards' packer writes it: every word replaced by its base-36
    index, the words in a ``|``-joined list, unpacked by ``eval`` at run time."""
    words: list[str] = []
    index: dict[str, int] = {}

    def token(m: re.Match[str]) -> str:
        w = m.group(0)
        if w not in index:
            index[w] = len(words)
            words.append(w)
        return _base36(index[w])

    packed = re.sub(r"\b\w+\b", token, source)
    packed = packed.replace("\\", "\\\\").replace("'", "\\'")
    return ("eval(function(p,a,c,k,e,d){e=function(c){return c.toString(36)};"
            "if(!''.replace(/^/,String)){while(c--){d[c.toString(a)]=k[c]||c.toString(a)}"
            "k=[function(e){return d[e]}];e=function(){return'\\\\w+'};c=1};"
            "while(c--){if(k[c]){p=p.replace(new RegExp('\\\\b'+e(c)+'\\\\b','g'),k[c])}}return p}"
            f"('{packed}',36,{len(words)},'{'|'.join(words)}'.split('|'),0,{{}}))")


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def film_page(player: Player, host: str) -> str:
    """The body of the link site's film page for ``player`` (``host``: the video host's base)."""
    h1 = f"<h1>{html.escape(player.title)}</h1>"
    url = host + player.media
    if player.kind == "base64":
        b64 = base64.b64encode(url.encode()).decode()
        parts = [b64[i:i + 7] for i in range(0, len(b64), 7)]
        return (h1 + '<div id="player"></div><script>'
                f"var p = {json.dumps(parts)}; var v = document.createElement('video');"
                "v.controls = true; v.preload = 'none'; v.width = 640; v.height = 360;"
                "v.src = atob(p.join('')); document.getElementById('player').appendChild(v);</script>")
    if player.kind == "api":
        vid = player.media.split("/")[-1].split(".")[0]
        return (h1 + '<div id="player" style="width:640px;height:360px"></div><script>'
                f"fetch('/api/source/{vid}', {{method: 'POST', headers: "
                "{'X-Requested-With': 'XMLHttpRequest'}}).then(r => r.json()).then(d => {"
                "var v = document.createElement('video'); v.muted = true; v.autoplay = true;"
                "v.src = d.data[0].file; document.getElementById('player').appendChild(v); });</script>")
    if player.kind == "packed":
        src = (f"var s=['{url[:len(url) // 2]}','{url[len(url) // 2:]}'];"
               "var v=document.createElement('video');v.muted=true;v.autoplay=true;"
               "v.src=s[0]+s[1];document.getElementById('player').appendChild(v);")
        return h1 + f'<div id="player"></div><script>{pack(src)}</script>'
    if player.kind == "overlay":
        rev = url[::-1]
        return (h1 + '<div id="box" style="position:relative;width:640px;height:360px;background:#000">'
                '<div class="play-overlay" style="position:absolute;inset:0;background:#222;color:#fff">'
                "Cliquez pour lire</div></div><script>"
                "document.querySelector('.play-overlay').addEventListener('click', function () {"
                "window.open('about:blank#pub', '_blank');"
                f"var v = document.createElement('video'); v.muted = true; v.src = '{rev}'"
                ".split('').reverse().join(''); this.remove();"
                "document.getElementById('box').appendChild(v); v.play(); });</script>")
    if player.kind == "nested":
        vid = player.media.split("/")[-1].split(".")[0]
        return h1 + f'<iframe src="{host}/player/outer/{vid}" width="660" height="380"></iframe>'
    if player.kind == "countdown":
        vid = player.media.split("/")[-1].split(".")[0]
        return h1 + f'<p><a class="btn" href="{host}/dl/{vid}">Lien de téléchargement</a></p>'
    if player.kind == "mse":
        man = url.replace("/", "\\/")
        return (h1 + '<video id="v" muted width="640" height="360"></video><script>'
                "var ms = new MediaSource(); document.getElementById('v').src = URL.createObjectURL(ms);"
                f"ms.addEventListener('sourceopen', function () {{ fetch('{man}').then(r => r.text()); }});"
                "</script>")
    raise ValueError(player.kind)


def host_page(path: str, method: str, headers: dict[str, str], host: str) -> tuple[int, str, str] | None:
    """The players' other pages: (status, body, content type), or None. The source API
    lives on the link site itself (it answers with the video host's file); the rest on
    the video host."""
    if path.startswith("/api/source/"):
        vid = path[len("/api/source/"):]
        if method != "POST" or headers.get("x-requested-with") != "XMLHttpRequest":
            return 400, json.dumps({"success": False}), "application/json"
        return 200, json.dumps({"success": True, "data": [{"file": f"{host}/v/{vid}.mp4", "label": "720p",
                                                          "type": "mp4"}]}), "application/json"
    if path.startswith("/player/outer/"):
        vid = path[len("/player/outer/"):]
        return 200, (f'<!doctype html><body style="margin:0"><iframe src="/player/inner/{vid}" width="640" '
                     'height="360"></iframe></body>'), "text/html; charset=utf-8"
    if path.startswith("/player/inner/"):
        vid = path[len("/player/inner/"):]
        # The real thing: hotlink protection. Only the host's own outer player may embed it.
        if not headers.get("referer", "").startswith(f"{host}/player/outer/"):
            return 403, "<h1>Embedding not allowed</h1>", "text/html; charset=utf-8"
        parts = ["/v/", vid, ".mp4"]
        return 200, ('<!doctype html><body style="margin:0"><video id="v" muted autoplay width="640" height="360">'
                     f"</video><script>document.getElementById('v').src = {json.dumps(parts)}.join('');"
                     "</script></body>"), "text/html; charset=utf-8"
    if path.startswith("/dl/"):
        vid = path[len("/dl/"):]
        return (200, ('<!doctype html><body><h1>Votre lien sera prêt dans <span id="n">2</span> s</h1>'
                     '<div id="go"></div><script>var n = 2; var t = setInterval(function () {'
                     "n--; document.getElementById('n').textContent = n; if (n > 0) return; clearInterval(t);"
                     "var a = document.createElement('a'); a.id = 'download-button';"
                     f"a.href = ['/v/', '{vid}', '.mp4'].join(''); a.textContent = 'Télécharger';"
                     "a.style.cssText = 'display:inline-block;padding:20px;background:#0a0';"
                     "document.getElementById('go').appendChild(a); }, 1000);</script></body>"),
                "text/html; charset=utf-8")
    return None
