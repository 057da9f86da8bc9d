/// The admin page's style sheet, inline in the page (its hash is in the page's
/// Content-Security-Policy, so it must be exactly this text).
enum AdminPageStyle {
    static let css = """

        :root { --bg: #f4f5f8; --card: #fff; --text: #1d2230; --muted: #6b7285; --line: #e3e6ee;
          --accent: #4f6cf7; --soft: #e8ecff; --ok: #1f9d55; --warn: #d97706; --bad: #dc2626; }
        @media (prefers-color-scheme: dark) {
          :root { --bg: #12141a; --card: #1b1e27; --text: #e6e8ef; --muted: #8b91a3; --line: #2a2e3a;
            --accent: #7b8fff; --soft: #252c4d; }
        }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
          background: var(--bg); color: var(--text); }
        header { display: flex; align-items: center; flex-wrap: wrap; gap: 10px; padding: 10px 16px;
          background: var(--card); border-bottom: 1px solid var(--line); }
        h1 { font-size: 16px; margin: 0; font-weight: 650; }
        h2 { font-size: 13px; margin: 0 0 8px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
        h3 { font-size: 13px; margin: 12px 0 6px; }
        .grow { flex: 1; }
        .muted { color: var(--muted); } .small { font-size: 12px; }
        .hidden { display: none !important; }
        .pill { display: inline-flex; align-items: center; gap: 6px; font-size: 12px; color: var(--muted);
          background: var(--bg); border: 1px solid var(--line); padding: 3px 10px; border-radius: 999px;
          max-width: 70vw; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; }
        .dot { width: 8px; height: 8px; border-radius: 50%; background: var(--warn); flex: none; }
        .pill.up .dot { background: var(--ok); } .pill.down .dot { background: var(--bad); }
        button { font: inherit; border: 0; border-radius: 8px; padding: 7px 14px; background: var(--accent);
          color: #fff; cursor: pointer; }
        button.ghost { background: transparent; color: var(--text); border: 1px solid var(--line); padding: 4px 10px; }
        button:disabled { opacity: .45; cursor: default; }
        input, textarea, select { font: inherit; color: inherit; background: var(--bg); border: 1px solid var(--line);
          border-radius: 8px; padding: 6px 10px; min-width: 0; }
        textarea { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; resize: vertical; }
        main { padding: 12px 16px 24px; display: flex; flex-direction: column; gap: 12px; max-width: 1200px; margin: 0 auto; }
        .card { background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 12px 14px; min-width: 0; }
        #keyPanel { max-width: 420px; margin: 16px auto 0; }
        #keyPanel form { display: flex; gap: 8px; } #keyPanel input { flex: 1; }
        .banner { margin: 12px 16px 0; padding: 8px 12px; border-radius: 8px; background: var(--card);
          border: 1px solid var(--bad); color: var(--bad); overflow-wrap: anywhere; }
        .charts { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 12px; }
        .chart .label { font-size: 12px; color: var(--muted); }
        .chart .value { font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; }
        .chart canvas { display: block; width: 100%; height: 56px; margin-top: 4px; }
        .totals { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 6px 16px; margin: 0; }
        .totals div { min-width: 0; } .totals dt { font-size: 12px; color: var(--muted); }
        .totals dd { margin: 0; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
        .columns { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
        .list { list-style: none; margin: 0; padding: 0; min-height: 1.5em; }
        .list li { padding: 4px 6px; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; display: flex; gap: 8px; }
        .list li:last-child { border-bottom: 0; }
        .list li.pick { cursor: pointer; } .list li.pick:hover, .list li.selected { background: var(--soft); }
        .list li .grow { overflow: hidden; text-overflow: ellipsis; }
        .list li.empty { color: var(--muted); }
        .pager { display: flex; align-items: center; justify-content: space-between; gap: 8px; margin-top: 8px; }
        .pagesize { align-self: flex-end; }
        form .row { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 16px; margin-bottom: 8px; }
        .field { display: flex; flex-direction: column; gap: 2px; font-size: 12px; color: var(--muted); margin-bottom: 8px; }
        .field input, .field textarea { font-size: 14px; color: var(--text); }
        .check { display: block; margin-bottom: 8px; }
        .result { overflow-wrap: anywhere; min-width: 0; } .result.bad { color: var(--bad); } .result.ok { color: var(--ok); }
        @media (max-width: 760px) {
          .charts { grid-template-columns: repeat(2, minmax(0, 1fr)); }
          .columns { grid-template-columns: minmax(0, 1fr); }
          main { padding: 10px; }
        }

        """
}
