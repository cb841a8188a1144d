// Talks to a running `jmoe serve` with OpenAI's own Node.js client and checks what comes back:
// models, chat and completions (whole and streamed, greedy, so both must give the same text), usage, stop sequences
// and errors. Exits 0 when everything holds, 1 with a message naming the first thing that does not.
//
//   cd tools/openai-node && npm ci
//   JMOE_BASE_URL=http://127.0.0.1:8080/v1 JMOE_API_KEY=... node check.mjs
import OpenAI from 'openai';

const baseURL = process.env.JMOE_BASE_URL || 'http://127.0.0.1:8080/v1';
const client = new OpenAI({ baseURL, apiKey: process.env.JMOE_API_KEY || 'none', maxRetries: 0, timeout: 120_000 });
let checks = 0;

function check(ok, what) {
  if (!ok) {
    console.error('openai-node check FAILED: ' + what);
    process.exit(1);
  }
  checks++;
}

async function expectError(status, promise, what) {
  try {
    await promise;
  } catch (e) {
    check(e instanceof OpenAI.APIError, what + ': an APIError, got ' + e);
    check(e.status === status, what + `: status ${status}, got ${e.status}`);
    check(typeof e.message === 'string' && e.error && typeof e.error.message === 'string', what + ': an OpenAI-shaped error body');
    return e;
  }
  check(false, what + ': the request should have failed');
}

const models = await client.models.list();
check(models.data.length === 1 && typeof models.data[0].id === 'string', 'one model listed');
const model = models.data[0].id;

const messages = [{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: 'Tell me about the town.' }];
const whole = await client.chat.completions.create({ model, messages, max_tokens: 24, temperature: 0 });
const text = whole.choices[0].message.content;
check(whole.object === 'chat.completion' && whole.choices.length === 1, 'a chat completion with one choice');
check(whole.choices[0].message.role === 'assistant' && typeof text === 'string' && text.length > 0, 'an assistant message with text');
check(['stop', 'length'].includes(whole.choices[0].finish_reason), 'a finish reason');
check(whole.usage.total_tokens === whole.usage.prompt_tokens + whole.usage.completion_tokens && whole.usage.completion_tokens > 0, 'usage adds up');

const stream = await client.chat.completions.create({ model, messages, max_tokens: 24, temperature: 0, stream: true,
  stream_options: { include_usage: true } });
let streamed = '', ids = new Set(), finish = null, usage = null, first = null;
for await (const chunk of stream) {
  ids.add(chunk.id);
  if (first === null) first = chunk;
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    if (c.delta.content) streamed += c.delta.content;
    if (c.finish_reason) finish = c.finish_reason;
  }
}
check(ids.size === 1, 'every chunk of a stream has one id');
check(first.choices[0].delta.role === 'assistant', 'the first chunk carries the role');
check(streamed === text, `the stream is the same text as the whole answer:\n  ${JSON.stringify(streamed)}\n  ${JSON.stringify(text)}`);
check(finish === whole.choices[0].finish_reason, 'the stream ends with the same finish reason');
check(usage && usage.completion_tokens === whole.usage.completion_tokens, 'the usage chunk counts the same tokens');

const completion = await client.completions.create({ model, prompt: 'The history of the town', max_tokens: 16, temperature: 0 });
check(completion.object === 'text_completion' && completion.choices[0].text.length > 0, 'a text completion');
let streamedCompletion = '';
for await (const chunk of await client.completions.create({ model, prompt: 'The history of the town', max_tokens: 16, temperature: 0, stream: true })) {
  for (const c of chunk.choices) streamedCompletion += c.text;
}
check(streamedCompletion === completion.choices[0].text, 'a streamed completion is the same text');

if (text.length >= 6) {
  const stop = text.slice(3, 6);
  const stopped = await client.chat.completions.create({ model, messages, max_tokens: 24, temperature: 0, stop: [stop] });
  check(stopped.choices[0].message.content === text.slice(0, text.indexOf(stop)), 'the text ends before the stop sequence');
  check(stopped.choices[0].finish_reason === 'stop', 'finish_reason "stop" at a stop sequence');
}

const bad = await expectError(400, client.chat.completions.create({ model, messages, max_tokens: 4, temperature: 5 }), 'temperature 5');
check(bad.param === 'temperature', 'the error names the field');
await expectError(400, client.chat.completions.create({ model, messages: [], max_tokens: 4 }), 'no messages');
if (process.env.JMOE_API_KEY) {
  const stranger = new OpenAI({ baseURL, apiKey: 'wrong-key', maxRetries: 0 });
  await expectError(401, stranger.chat.completions.create({ model, messages, max_tokens: 4 }), 'a wrong API key');
}
console.log(`openai-node check passed: ${checks} checks against ${baseURL} (model ${model})`);
