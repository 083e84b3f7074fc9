/* genlib book: two fixes that apply to every page (see scripts/book_ext/genlib_book.py). */
(function () {
  "use strict";

  /* 1. Display equations fit their column: one wider than the column (a scrollbar would cut it
        off) is scaled down just enough to fit, at every window size, but never below MIN_SCALE
        (smaller is unreadable: such an equation needs a line break in the chapter source, and the
        browser check reports it). */
  var MIN_SCALE = 0.6;
  function fitEquations() {
    document.querySelectorAll('mjx-container[display="true"]').forEach(function (eq) {
      eq.style.fontSize = "";
      var need = eq.scrollWidth, room = eq.clientWidth;
      if (room > 0 && need > room + 1) {
        eq.style.fontSize = (100 * Math.max(MIN_SCALE, (room - 2) / need)).toFixed(2) + "%";
        eq.classList.add("genlib-fitted");
      }
    });
    document.documentElement.dataset.genlibEquationsFitted = "1";
  }
  function afterTypesetting(callback) {
    var mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) { mj.startup.promise.then(callback); }
    else { callback(); }
  }
  window.addEventListener("load", function () { afterTypesetting(fitEquations); });
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(fitEquations, 150);
  });

  /* 2. Search results show math typeset, not raw TeX: each math element of the page becomes one
        placeholder character before Sphinx cuts the 240-character snippet (so no formula is cut in
        half), then the placeholders become inline math and MathJax typesets the snippet. */
  var FIRST = 0xE000;
  function loadMathJax() {
    if (window.MathJax && window.MathJax.typesetPromise) { return Promise.resolve(window.MathJax); }
    if (!loadMathJax.promise) {
      loadMathJax.promise = new Promise(function (resolve, reject) {
        var root = document.documentElement.dataset.content_root || "";
        window.MathJax = window.MathJax || {};
        var script = document.createElement("script");
        script.src = root + "_static/mathjax/tex-chtml.js";
        script.onload = function () { window.MathJax.startup.promise.then(function () { resolve(window.MathJax); }); };
        script.onerror = reject;
        document.head.appendChild(script);
      });
    }
    return loadMathJax.promise;
  }
  function inlineTex(tex) {
    tex = tex.trim();
    var m = tex.match(/^\\\(([\s\S]*)\\\)$/) || tex.match(/^\\\[([\s\S]*)\\\]$/) || tex.match(/^\$\$([\s\S]*)\$\$$/);
    return "\\(" + (m ? m[1] : tex).replace(/\\(begin|end)\{(equation|align|gather|multline)\*?\}/g, "\\$1{aligned}").replace(/\\begin\{aligned\}|\\end\{aligned\}|\\\\|&/g, " ").replace(/\\label\{[^}]*\}/g, "") + "\\)";
  }
  function patchSearch() {
    // searchtools.js declares `const Search`: a global binding, but not a property of window
    if (typeof Search === "undefined" || !Search.makeSearchSummary || Search.genlibPatched) { return; }
    var original = Search.makeSearchSummary;
    Search.genlibPatched = true;
    Search.makeSearchSummary = function (htmlText, keywords, anchor) {
      var doc = new DOMParser().parseFromString(htmlText, "text/html");
      var maths = [];
      doc.querySelectorAll(".math").forEach(function (el) {
        if (maths.length > 6000) { return; }
        maths.push(el.textContent);
        el.replaceWith(doc.createTextNode(String.fromCharCode(FIRST + maths.length - 1)));
      });
      var summary = original.call(this, doc.documentElement.outerHTML, keywords, anchor);
      if (!summary || !maths.length) { return summary; }
      var text = summary.textContent, hasMath = false;
      summary.textContent = "";
      var plain = "";
      for (var i = 0; i < text.length; i++) {
        var code = text.charCodeAt(i) - FIRST;
        if (code >= 0 && code < maths.length) {
          if (plain) { summary.appendChild(document.createTextNode(plain)); plain = ""; }
          var span = document.createElement("span");
          span.className = "math notranslate nohighlight";
          span.textContent = inlineTex(maths[code]);
          summary.appendChild(span);
          hasMath = true;
        } else { plain += text[i]; }
      }
      if (plain) { summary.appendChild(document.createTextNode(plain)); }
      if (hasMath) {
        summary.dataset.genlibMath = "pending";
        setTimeout(function () {
          loadMathJax().then(function (mj) { return mj.typesetPromise([summary]); })
            .then(function () { summary.dataset.genlibMath = "done"; })
            .catch(function () { summary.dataset.genlibMath = "failed"; });
        }, 0);
      }
      return summary;
    };
  }
  document.addEventListener("DOMContentLoaded", patchSearch);

  /* 3. Long code lines wrap at the column (genlib-book.css); each source line becomes a block with
        a hanging indent, so a wrapped continuation is indented under its line instead of
        starting at the margin like a new statement. Pygments' markup is only <span>s: a span
        open at the end of a line is closed there and reopened on the next line. */
  function hangCodeLines() {
    document.querySelectorAll("div.highlight pre").forEach(function (pre) {
      if (pre.dataset.genlibLines) return;
      var lines = pre.innerHTML.replace(/\n$/, "").split("\n"), open = [], out = [];
      lines.forEach(function (line) {
        var html = open.join("") + line;
        (line.match(/<span[^>]*>|<\/span>/g) || []).forEach(function (tag) {
          if (tag === "</span>") { open.pop(); } else { open.push(tag); }
        });
        out.push('<span class="genlib-line">' + html + "</span>".repeat(open.length) + "</span>");
      });
      pre.innerHTML = out.join("");  // the blocks break the lines (copying keeps them)
      pre.dataset.genlibLines = "1";
    });
  }
  document.addEventListener("DOMContentLoaded", hangCodeLines);
})();
