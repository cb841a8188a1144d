package dev.jmoe.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Jinja2's whitespace rules with trim_blocks and lstrip_blocks on, as Hugging Face renders chat templates. */
class JinjaWhitespaceTest {

    @ParameterizedTest
    @CsvSource(delimiter = '|', quoteCharacter = '"', value = {
        // dashes strip all whitespace on their side, newlines included
        "a  {%- if true %}b{% endif -%}  \\n c          | abc",
        "  \\n  {{- 'y' }}  z                          | y  z",
        "{{ 'y' -}}  \\n  z                            | yz",
        // lstrip_blocks only at the start of a line; trim_blocks eats one newline after a block tag
        "x {% if true %}y{% endif %}                   | x y",
        "x\\n    {% if true %}\\ny\\n    {% endif %}\\nz | x\\ny\\nz",
        "{% if true %}\\n\\ny{% endif %}               | \\ny",
        // expression tags are not blocks: neither rule applies to them
        "x\\n  {{ 'y' }}\\nz                           | x\\n  y\\nz",
        // '+' turns the rules off for that side
        "\"  {%+ if true %}y{% endif +%}\\nz\"         | \"  y\\nz\"",
        // comments count as blocks
        "a\\n  {# note #}\\nb                          | a\\nb",
        // tag delimiters inside string literals do not end the tag
        "{{ '%}' + \"}}\" }}                           | %}}}",
        // raw blocks are left alone
        "{% raw %}{{- x }}{% endraw %}                 | {{- x }}",
        // a single trailing newline of the template is dropped
        "x\\n                                          | x",
        "x\\n\\n                                       | x\\n",
    })
    void rendersLikeJinja2(String template, String expected) {
        String t = template.replace("\\n", "\n");
        String e = expected.replace("\\n", "\n");
        assertEquals(e, ChatTemplate.of(t, "", "").render(List.of(), false), template);
    }
}
