"""The worker task template for A2I reviews of Rekognition moderation labels (CreateHumanTaskUi).

Pure text. The page uses AWS's `crowd-rekognition-detect-moderation-labels` element: its
categories are the labels that opened the loop (`selectedAiServiceResponse`), the image comes
from the S3 object Rekognition read (aws.md §3.3: S3 input is what makes the image visible), and
the worker's selection is returned as `moderationLabels` (an empty list for "none"), which is
what `bot.core.verdict.a2i_answers` reads. The text must not change from run to run: `modbot a2i
setup` compares it with the stored template by its SHA-256.
"""

from __future__ import annotations

import hashlib
from html import escape

from bot.core import taxonomy

_SHORT = """\
<p>Look at the image and select <strong>every category you can actually see</strong> in it.</p>
<p>The categories offered are the ones the automatic check suspected. Judge the image itself,
not the suggestion: leave a category unselected if it is not really there.</p>
<p>If none of them apply, choose <strong>None of these apply</strong> and submit.</p>
<p>Do not download, copy or share the image. If it shows a child in danger or something
illegal, tell your team lead after submitting.</p>"""


def _categories() -> str:
    items = []
    for top, middles in taxonomy.TREE.items():
        parts = []
        for middle, leaves in middles.items():
            below = f" ({', '.join(escape(leaf) for leaf in leaves)})" if leaves else ""
            parts.append(f"{escape(middle)}{below}")
        detail = f": {'; '.join(parts)}" if parts else ""
        items.append(f"<li><strong>{escape(top)}</strong>{detail}</li>")
    return "<ul>\n" + "\n".join(items) + "\n</ul>"


def task_template() -> str:
    """The Liquid template for the human task UI."""
    full = (
        "<p>The categories come from Amazon Rekognition's moderation labels. A label and its "
        "parent category may both be offered (for example a weapon under Violence): select "
        "each one that applies.</p>\n" + _categories()
    )
    return f"""\
<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>
{{% capture s3_uri %}}s3://{{{{ task.input.aiServiceRequest.image.s3Object.bucket }}}}/\
{{{{ task.input.aiServiceRequest.image.s3Object.name }}}}{{% endcapture %}}

<crowd-form>
  <crowd-rekognition-detect-moderation-labels
    categories='[
      {{% for label in task.input.selectedAiServiceResponse.moderationLabels %}}
        {{
          name: "{{{{ label.name }}}}",
          parentName: "{{{{ label.parentName }}}}",
        }},
      {{% endfor %}}
    ]'
    src="{{{{ s3_uri | grant_read_access }}}}"
    header="Which of these categories does the image show? Select all that apply."
    exclusion-category='{{ "text": "None of these apply" }}'
  >
    <short-instructions header="How to review">
{_SHORT}
    </short-instructions>
    <full-instructions header="The categories">
{full}
    </full-instructions>
  </crowd-rekognition-detect-moderation-labels>
</crowd-form>
"""


def template_sha256(template: str) -> str:
    return hashlib.sha256(template.encode()).hexdigest()
