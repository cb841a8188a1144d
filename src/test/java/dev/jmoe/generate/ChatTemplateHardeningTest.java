package dev.jmoe.generate;

import static org.junit.jupiter.api.Assertions.*;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Chat templates come from model files and messages from users: neither may run code the other did not write. */
class ChatTemplateHardeningTest {

    @Test
    void messageContentIsNeverInterpretedAsTemplateCode() {
        // Found by the chat-template fuzz campaign: Jinjava evaluated "{{ }}" and "{% %}" inside message content.
        String content = "{{ 7*7 }} and {% for i in range(3) %}x{% endfor %}";
        String out = ChatTemplate.of(ChatTemplate.CHATML, "<s>", "</s>").render(List.of(ChatMessage.user(content)), true);
        assertEquals("<|im_start|>user\n" + content + "<|im_end|>\n<|im_start|>assistant\n", out);
    }

    @Test
    void loopsNestedOverTheMessagesStopAtTheNodeBudget() {
        // Found by the chat-template campaign (a 26 s "slow unit"): time grows as messages^depth.
        String src = "{% for a in messages %}{% for b in messages %}{% for c in messages %}{% for d in messages %}"
                + "{{ a.role }}{% endfor %}{% endfor %}{% endfor %}{% endfor %}";
        List<ChatMessage> forty = java.util.Collections.nCopies(40, ChatMessage.user("x"));
        ChatTemplateException e = assertTimeoutPreemptively(Duration.ofSeconds(30),
                () -> assertThrows(ChatTemplateException.class, () -> ChatTemplate.of(src, "", "").render(forty, true)));
        assertTrue(e.getMessage().startsWith("chat template stopped: rendering this conversation took more than 1000000 template nodes"), e.getMessage());
        assertEquals("x".repeat(0) + "user", ChatTemplate.of(src, "", "").render(List.of(ChatMessage.user("x")), false),
                "the same template on one message renders");
    }

    @Test
    void runawayTemplatesFailInsteadOfExhaustingMemoryOrTime() {
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            for (String src : new String[] {
                    "{% set s = 'x' %}{% for i in range(1000) %}{% set s = s ~ s %}{% endfor %}{{ s }}",
                    "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}"}) {
                try {
                    String out = ChatTemplate.of(src, "", "").render(List.of(ChatMessage.user("hi")), true);
                    assertTrue(out.length() <= ChatTemplate.MAX_OUTPUT_CHARS, "output bounded: " + out.length());
                } catch (ChatTemplateException e) {
                    assertNotNull(e.getMessage());
                }
            }
        });
    }
}
