"""Built-in respondent-facing messages in zh-Hant, zh-Hans and en.

Languages without a table fall back to English; a questionnaire can override the required and
constraint messages per question (``required_message``, ``constraint_message``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["EXPORT_LABELS", "MESSAGES", "export_label", "message"]

MESSAGES: Final[dict[str, dict[str, str]]] = {
    "en": {
        "required": "An answer is required.",
        "not_integer": "Please enter a whole number.",
        "not_number": "Please enter a number.",
        "not_date": "Please enter a date as YYYY-MM-DD.",
        "not_datetime": "Please enter a date and time as YYYY-MM-DDTHH:MM.",
        "not_time": "Please enter a time as HH:MM.",
        "not_a_ranking": "Please put every option in order, each once.",
        "not_acknowledged": "Please confirm with OK.",
        "not_text": "Please enter text.",
        "below_min": "The answer must be at least {min}.",
        "above_max": "The answer must be at most {max}.",
        "too_long": "The answer must be at most {max_length} characters.",
        "not_a_choice": "{value} is not one of the options.",
        "not_a_list": "Please choose one or more options.",
        "duplicate_choice": "{value} is chosen twice.",
        "exclusive_choice": "{label} cannot be combined with other options.",
        "too_many_choices": "Please choose at most {max_selected} options.",
        "other_required": "Please specify the other answer.",
        "other_not_allowed": "Only the 'other' option takes a specified text.",
        "special_not_allowed": "This question does not accept {special}.",
        "special_with_value": "Give either an answer or {special}, not both.",
        "constraint": "The answer is not valid.",
        "note_takes_no_answer": "This is a read-out text; continue without an answer.",
        "invalid_key": "Key {key} is not valid here.",
        "list_separator": ", ",
        "completed": "Thank you, the interview is complete.",
        "screened_out": "Thank you for your time; that is all we need.",
        "quota_full": "Thank you; we have already heard from enough people like you.",
    },
    "zh-Hant": {
        "required": "此題必須作答。",
        "not_integer": "請輸入整數。",
        "not_number": "請輸入數字。",
        "not_date": "請以 YYYY-MM-DD 格式輸入日期。",
        "not_datetime": "請以 YYYY-MM-DDTHH:MM 格式輸入日期和時間。",
        "not_time": "請以 HH:MM 格式輸入時間。",
        "not_a_ranking": "請將每個選項排序，每個選項一次。",
        "not_acknowledged": "請按「確定」確認。",
        "not_text": "請輸入文字。",
        "below_min": "答案不可小於 {min}。",
        "above_max": "答案不可大於 {max}。",
        "too_long": "答案不可超過 {max_length} 個字元。",
        "not_a_choice": "{value} 不是可選的選項。",
        "not_a_list": "請選擇一個或多個選項。",
        "duplicate_choice": "{value} 重複選擇。",
        "exclusive_choice": "「{label}」不可與其他選項同時選擇。",
        "too_many_choices": "最多只能選擇 {max_selected} 項。",
        "other_required": "請說明「其他」的內容。",
        "other_not_allowed": "只有「其他」選項可以填寫說明。",
        "special_not_allowed": "此題不接受「{special}」。",
        "special_with_value": "請作答或選擇「{special}」，不可兩者同時。",
        "constraint": "答案不符合要求。",
        "note_takes_no_answer": "這是宣讀說明，請直接繼續。",
        "invalid_key": "按鍵 {key} 無效。",
        "list_separator": "、",
        "completed": "訪問完成，謝謝您的寶貴意見。",
        "screened_out": "謝謝您撥冗，本次訪問到此結束。",
        "quota_full": "謝謝您，與您條件相同的受訪者已經足額。",
    },
    "zh-Hans": {
        "required": "此题必须作答。",
        "not_integer": "请输入整数。",
        "not_number": "请输入数字。",
        "not_date": "请以 YYYY-MM-DD 格式输入日期。",
        "not_datetime": "请以 YYYY-MM-DDTHH:MM 格式输入日期和时间。",
        "not_time": "请以 HH:MM 格式输入时间。",
        "not_a_ranking": "请将每个选项排序，每个选项一次。",
        "not_acknowledged": "请按“确定”确认。",
        "not_text": "请输入文字。",
        "below_min": "答案不可小于 {min}。",
        "above_max": "答案不可大于 {max}。",
        "too_long": "答案不可超过 {max_length} 个字符。",
        "not_a_choice": "{value} 不是可选的选项。",
        "not_a_list": "请选择一个或多个选项。",
        "duplicate_choice": "{value} 重复选择。",
        "exclusive_choice": "“{label}”不可与其他选项同时选择。",
        "too_many_choices": "最多只能选择 {max_selected} 项。",
        "other_required": "请说明“其他”的内容。",
        "other_not_allowed": "只有“其他”选项可以填写说明。",
        "special_not_allowed": "此题不接受“{special}”。",
        "special_with_value": "请作答或选择“{special}”，不可两者同时。",
        "constraint": "答案不符合要求。",
        "note_takes_no_answer": "这是宣读说明，请直接继续。",
        "invalid_key": "按键 {key} 无效。",
        "list_separator": "、",
        "completed": "访问完成，谢谢您的宝贵意见。",
        "screened_out": "谢谢您抽空，本次访问到此结束。",
        "quota_full": "谢谢您，与您条件相同的受访者已经足额。",
    },
}

_SPECIAL_NAMES: Final[dict[str, dict[str, str]]] = {
    "en": {"dont_know": "don't know", "refused": "refused", "other": "other"},
    "zh-Hant": {"dont_know": "不知道", "refused": "拒答", "other": "其他"},
    "zh-Hans": {"dont_know": "不知道", "refused": "拒答", "other": "其他"},
}


EXPORT_LABELS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "dont_know": "Don't know",
        "refused": "Refused",
        "selected": "selected",
        "not_selected": "not selected",
        "specify": "other (specify)",
    },
    "zh-Hant": {
        "dont_know": "不知道",
        "refused": "拒答",
        "selected": "已選",
        "not_selected": "未選",
        "specify": "其他（請說明）",
    },
    "zh-Hans": {
        "dont_know": "不知道",
        "refused": "拒答",
        "selected": "已选",
        "not_selected": "未选",
        "specify": "其他（请说明）",
    },
}
"""Words exports write next to the questionnaire's own texts (value labels, suffixes)."""


def export_label(key: str, language: str) -> str:
    """An export word in ``language`` (English if there is no table for it)."""
    return (EXPORT_LABELS.get(language) or EXPORT_LABELS["en"])[key]


def message(message_id: str, language: str, **params: object) -> str:
    """The built-in message ``message_id`` in ``language`` (English if unknown), formatted."""
    table = MESSAGES.get(language) or MESSAGES["en"]
    names = _SPECIAL_NAMES.get(language) or _SPECIAL_NAMES["en"]
    if "special" in params:
        params["special"] = names.get(str(params["special"]), str(params["special"]))
    return table.get(message_id, MESSAGES["en"][message_id]).format(**params)
