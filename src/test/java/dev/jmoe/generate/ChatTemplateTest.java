package dev.jmoe.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Expected outputs are derived by hand from each template under Jinja2's rules (trim_blocks, lstrip_blocks). */
class ChatTemplateTest {

    private static final List<ChatMessage> CHAT = List.of(
            ChatMessage.system("You are helpful."), ChatMessage.user("Hi"), ChatMessage.assistant("Hello!"),
            ChatMessage.user("How are you?"));

    @Test
    void chatml() {
        String out = ChatTemplate.of(ChatTemplate.CHATML, "", "").render(CHAT, true);
        assertEquals("<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                + "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n"
                + "<|im_start|>assistant\n", out);
        assertFalse(ChatTemplate.of(ChatTemplate.CHATML, "", "").render(CHAT, false).endsWith("assistant\n"));
    }

    /** Mixtral-Instruct's template: strict user/assistant alternation, no system role. */
    private static final String MIXTRAL = "{{ bos_token }}{% for message in messages %}"
            + "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
            + "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
            + "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
            + "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
            + "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

    @Test
    void mixtralInstStyle() {
        ChatTemplate t = ChatTemplate.of(MIXTRAL, "<s>", "</s>");
        assertEquals("<s>[INST] Hi [/INST]Hello!</s>[INST] Bye [/INST]",
                t.render(List.of(ChatMessage.user("Hi"), ChatMessage.assistant("Hello!"), ChatMessage.user("Bye")), true));
        ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> t.render(CHAT, true));
        assertTrue(e.getMessage().contains("Conversation roles must alternate"), e.getMessage());
    }

    /** Llama-2-chat's template: the system prompt folded into the first user turn, content stripped. */
    private static final String LLAMA2 = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
            + "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
            + "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
            + "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('roles must alternate') }}{% endif %}"
            + "{% if loop.index0 == 0 and system_message != false %}"
            + "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
            + "{% else %}{% set content = message['content'] %}{% endif %}"
            + "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
            + "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

    @Test
    void llama2WithSystemPrompt() {
        String out = ChatTemplate.of(LLAMA2, "<s>", "</s>").render(List.of(ChatMessage.system("Be nice."),
                ChatMessage.user(" Hi "), ChatMessage.assistant("Hello! "), ChatMessage.user("Bye")), true);
        assertEquals("<s>[INST] <<SYS>>\nBe nice.\n<</SYS>>\n\n Hi [/INST] Hello! </s><s>[INST] Bye [/INST]", out);
    }

    /**
     * A Qwen3-style template: tools listed with tojson, namespace() state found by walking messages[::-1],
     * reasoning kept only after the last user query, Python string methods, enable_thinking.
     */
    private static final String QWEN = """
            {%- if tools %}
                {{- '<|im_start|>system\\n' }}
                {%- if messages[0].role == 'system' %}
                    {{- messages[0].content + '\\n\\n' }}
                {%- endif %}
                {{- "# Tools\\n<tools>" }}
                {%- for tool in tools %}
                    {{- "\\n" }}
                    {{- tool | tojson }}
                {%- endfor %}
                {{- "\\n</tools><|im_end|>\\n" }}
            {%- elif messages[0].role == 'system' %}
                {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
            {%- endif %}
            {%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
            {%- for message in messages[::-1] %}
                {%- set index = (messages|length - 1) - loop.index0 %}
                {%- if ns.multi_step_tool and message.role == "user" and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
                    {%- set ns.multi_step_tool = false %}
                    {%- set ns.last_query_index = index %}
                {%- endif %}
            {%- endfor %}
            {%- for message in messages %}
                {%- if message.role == "user" or (message.role == "system" and not loop.first) %}
                    {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
                {%- elif message.role == "assistant" %}
                    {%- set content = message.content %}
                    {%- set reasoning = '' %}
                    {%- if '</think>' in content %}
                        {%- set reasoning = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}
                        {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
                    {%- endif %}
                    {%- if loop.index0 > ns.last_query_index and reasoning %}
                        {{- '<|im_start|>assistant\\n<think>\\n' + reasoning.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}
                    {%- else %}
                        {{- '<|im_start|>assistant\\n' + content }}
                    {%- endif %}
                    {{- '<|im_end|>\\n' }}
                {%- endif %}
            {%- endfor %}
            {%- if add_generation_prompt %}
                {{- '<|im_start|>assistant\\n' }}
                {%- if enable_thinking is defined and enable_thinking is false %}
                    {{- '<think>\\n\\n</think>\\n\\n' }}
                {%- endif %}
            {%- endif %}
            """;

    @Test
    void qwenStyleWithReasoningAndThinkingSwitch() {
        List<ChatMessage> chat = List.of(ChatMessage.system("S"), ChatMessage.user("Q1"),
                ChatMessage.assistant("<think>\nr1\n</think>\n\nA1"), ChatMessage.user("Q2"),
                ChatMessage.assistant("<think>\nr2\n</think>\n\nA2"));
        ChatTemplate t = ChatTemplate.of(QWEN, "", "<|im_end|>");
        // The last user query is message 3: the reasoning of message 2 is dropped, that of message 4 kept.
        String expected = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n"
                + "<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n"
                + "<|im_start|>assistant\n<think>\nr2\n</think>\n\nA2<|im_end|>\n";
        assertEquals(expected, t.render(chat, false));
        assertEquals(expected + "<|im_start|>assistant\n<think>\n\n</think>\n\n",
                t.render(chat, true, Map.of("enable_thinking", false)));
        assertEquals(expected + "<|im_start|>assistant\n", t.render(chat, true, Map.of("enable_thinking", true)));
    }

    @Test
    void qwenStyleToolsUsePythonJson() {
        Map<String, Object> fn = new LinkedHashMap<>();
        fn.put("name", "get_weather");
        fn.put("parameters", Map.of("type", "object"));
        Map<String, Object> tool = new LinkedHashMap<>();
        tool.put("type", "function");
        tool.put("function", fn);
        String out = ChatTemplate.of(QWEN, "", "").render(List.of(ChatMessage.user("Weather in Zürich?")), true,
                Map.of("tools", List.of(tool)));
        assertEquals("<|im_start|>system\n# Tools\n<tools>\n"
                + "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\"}}}"
                + "\n</tools><|im_end|>\n<|im_start|>user\nWeather in Zürich?<|im_end|>\n<|im_start|>assistant\n", out);
    }

    @Test
    void blockWhitespaceFollowsJinja2Defaults() {
        String template = """
                {% for message in messages %}
                    {% if message.role == 'user' %}
                U:{{ message.content }}
                    {% endif %}
                {% endfor %}
                """;
        assertEquals("U:Hi\nU:How are you?\n", ChatTemplate.of(template, "", "").render(CHAT, false));
    }

    @Test
    void pythonStringMethodsAndFilters() {
        String t = "{{ messages[1].content.upper() }}|{{ messages[0].content.split(' ') | tojson }}|"
                + "{{ ', '.join(messages | map(attribute='role')) }}|{{ messages[0].content[-1] }}|"
                + "{{ 'a.b.c'.split('.', 1) | tojson }}|{{ messages | length }}|{{ messages[0] | tojson }}|"
                + "{{ '  x '.strip() }}|{{ 'Hello' | tojson(indent=2) }}|{{ 'abc'[::-1] }}";
        assertEquals("HI|[\"You\", \"are\", \"helpful.\"]|system, user, assistant, user|.|[\"a\", \"b.c\"]|4|"
                        + "{\"role\": \"system\", \"content\": \"You are helpful.\"}|x|\"Hello\"|cba",
                ChatTemplate.of(t, "", "").render(CHAT, false));
    }

    @Test
    void jinjaBuiltinsTemplatesRelyOn() {
        String t = "{% for m in messages %}{{ m.role }}{% if not loop.last %},{% endif %}{% endfor %}|{{ '  a  '|trim }}|"
                + "{{ messages|length }}|{% set ns = namespace(n=0) %}{% for m in messages if m.role == 'user' %}"
                + "{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}|{{ messages[0].content is string }}|{{ tools is defined }}";
        assertEquals("system,user,assistant,user|a|4|2|true|false", ChatTemplate.of(t, "", "").render(CHAT, false));
        // In a filtered loop, loop.index and loop.last count only the items kept.
        String filtered = "{% for m in messages if m.role == 'user' %}{{ loop.index }}:{{ m.content }}"
                + "{% if not loop.last %};{% endif %}{% endfor %}";
        assertEquals("1:Hi;2:How are you?", ChatTemplate.of(filtered, "", "").render(CHAT, false));
    }

    @Test
    void strftimeNowUsesTheClock() {
        Clock clock = Clock.fixed(Instant.parse("2024-07-03T09:05:00Z"), ZoneOffset.UTC);
        ChatTemplate t = ChatTemplate.of("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%-d %B %Y, %A %H:%M') }}", "", "")
                .withClock(clock);
        assertEquals("03 Jul 2024|3 July 2024, Wednesday 09:05", t.render(List.of(), false));
    }

    @Test
    void syntaxErrorsAreReported() {
        for (String broken : List.of("{% if add_generation_prompt %}x", "{{ messages[0 }}", "x{% endfor %}", "{% bogus %}")) {
            ChatTemplateException e = assertThrows(ChatTemplateException.class,
                    () -> ChatTemplate.of(broken, "", "").render(CHAT, true), broken);
            assertTrue(e.getMessage().startsWith("chat template failed"), e.getMessage());
        }
    }

    @Test
    void tokenizerTemplateOrChatmlFallback() {
        VocabData.Builder vocab = TestVocabs.bpe("gpt-2", List.of("H|i"), List.of("<s>", "</s>", "<|im_start|>", "<|im_end|>"), List.of());
        int bos = 257, eos = 258;
        Tokenizer none = Tokenizer.of(vocab.bos(bos).eos(eos).build());
        ChatTemplate fallback = ChatTemplate.forTokenizer(none);
        assertTrue(fallback.isFallback());
        assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
                fallback.render(List.of(ChatMessage.user("Hi")), true));

        Tokenizer withTemplate = Tokenizer.of(vocab.chatTemplate(MIXTRAL).addBos(true).build());
        ChatTemplate mixtral = ChatTemplate.forTokenizer(withTemplate);
        assertFalse(mixtral.isFallback());
        assertEquals("<s>[INST] Hi [/INST]", mixtral.render(List.of(ChatMessage.user("Hi")), true));
        // The template prints BOS and the tokenizer adds one: the prompt must still start with a single BOS.
        int[] ids = mixtral.encode(withTemplate, List.of(ChatMessage.user("Hi")), true);
        assertEquals(bos, ids[0]);
        assertTrue(ids[1] != bos);
        assertEquals("[INST] Hi [/INST]", withTemplate.decode(ids));

        int[] chatml = fallback.encode(none, List.of(ChatMessage.user("Hi")), true);
        assertEquals(none.tokenId("<|im_start|>"), chatml[0], "special tokens in the rendered prompt are parsed");
        assertTrue(java.util.Arrays.stream(chatml).anyMatch(id -> id == none.tokenId("<|im_end|>")));
        assertEquals(fallback.render(List.of(ChatMessage.user("Hi")), true), none.decode(chatml, true));
    }
}
