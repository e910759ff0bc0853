// tokenizer_ref.js -- runs the reference tokenizer library (Hugging Face `tokenizers` through the
// npm package @anush008/tokenizers, which scripts/fetch-tokenizers.sh installs into
// build-deps/npm-ref) for test_tokenizer_ref's differential test.
// Usage: node tokenizer_ref.js MODULE_DIR TOKENIZER.json IN.jsonl OUT.jsonl
// IN has one {"text": ...} per line; OUT gets one {"ids": [...], "dec": ...} per line: the ids of
// the text (add_special_tokens = false, special tokens in the text parsed) and their decoding.
'use strict';
const fs = require('fs');
const { Tokenizer } = require(process.argv[2]);
(async () => {
  const tok = Tokenizer.fromFile(process.argv[3]);
  const lines = fs.readFileSync(process.argv[4], 'utf8').split('\n').filter((l) => l.length);
  const out = [];
  for (const line of lines) {
    const enc = await tok.encode(JSON.parse(line).text, null, { addSpecialTokens: false });
    const ids = enc.getIds();
    out.push(JSON.stringify({ ids, dec: await tok.decode(ids, false) }));
  }
  fs.writeFileSync(process.argv[5], out.join('\n') + '\n');
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
