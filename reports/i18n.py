"""Report wording in English, simplified and traditional Chinese."""

from __future__ import annotations

from reports.exceptions import ReportInputError

__all__ = ["LANGUAGES", "check_language", "t"]

LANGUAGES = ("zh-Hans", "zh-Hant", "en")
_INDEX = {"en": 0, "zh-Hans": 1, "zh-Hant": 2}

# key: (en, zh-Hans, zh-Hant)
_TEXT: dict[str, tuple[str, str, str]] = {
    # report and section titles
    "service_level": ("Service-level statistics", "话务服务水平统计报表", "話務服務水平統計報表"),
    "agent_hours": (
        "Agent service time-period analysis",
        "坐席服务时段分析表",
        "坐席服務時段分析表",
    ),
    "detail": ("Agent service detail", "坐席服务明细表", "坐席服務明細表"),
    "attributes": ("Call attribute analysis", "来电属性分析报表", "來電屬性分析報表"),
    "periodic": ("Operating report", "运营报告", "運營報告"),
    "summary": ("KPI against target", "KPI 达成情况", "KPI 達成情況"),
    "agent_summary": ("Agents over the period", "坐席汇总", "坐席匯總"),
    "statement": ("Monthly statement", "对账单", "對帳單"),
    "period_week": ("Weekly", "周报", "週報"),
    "period_month": ("Monthly", "月报", "月報"),
    "period_quarter": ("Quarterly", "季报", "季報"),
    "period_half": ("Half-yearly", "半年报", "半年報"),
    "period_year": ("Yearly", "年报", "年報"),
    "period_day": ("Daily", "日报", "日報"),
    "period_custom": ("Period", "期间", "期間"),
    # columns
    "interval": ("Interval", "时段", "時段"),
    "utc_offset": ("UTC offset", "UTC 偏移", "UTC 偏移"),
    "dials": ("Dials", "呼出量", "呼出量"),
    "answered": ("Answered", "接通量", "接通量"),
    "human_contacts": ("Human contacts", "人工接通", "人工接通"),
    "valid_calls": ("Valid calls (> 15 s)", "有效通话(>15秒)", "有效通話(>15秒)"),
    "abandoned": ("Abandoned", "放弃量", "放棄量"),
    "abandon_rate": ("Abandon rate", "放弃率", "放棄率"),
    "asa_s": ("Avg speed to agent (s)", "平均转坐席时长(秒)", "平均轉坐席時長(秒)"),
    "avg_talk_s": ("Avg talk (s)", "平均通话时长(秒)", "平均通話時長(秒)"),
    "avg_wrap_s": ("Avg wrap-up (s)", "平均话后处理(秒)", "平均話後處理(秒)"),
    "occupancy": ("Occupancy", "坐席占用率", "坐席佔用率"),
    "conversions": ("Conversions", "成功量", "成功量"),
    "agent": ("Agent (工号)", "工号", "工號"),
    "hour": ("Hour", "小时", "小時"),
    "signed_in_s": ("Signed in (s)", "签入时长(秒)", "簽入時長(秒)"),
    "ready_s": ("Ready (s)", "示闲时长(秒)", "示閑時長(秒)"),
    "talk_s": ("Talking (s)", "通话时长(秒)", "通話時長(秒)"),
    "wrap_s": ("Wrap-up (s)", "话后处理(秒)", "話後處理(秒)"),
    "not_ready_s": ("Not ready (s)", "示忙时长(秒)", "示忙時長(秒)"),
    "not_ready_reasons": ("Not ready by reason", "示忙原因", "示忙原因"),
    "calls": ("Calls", "通话量", "通話量"),
    "valid_per_hour": ("Valid calls per hour", "每小时有效通话", "每小時有效通話"),
    "target": ("Target", "目标", "目標"),
    "meets_target": ("Meets target", "达标", "達標"),
    "time": ("Time", "时间", "時間"),
    "skill_group": ("Skill group", "技能组", "技能組"),
    "caller": ("Caller", "主叫", "主叫"),
    "callee": ("Callee", "被叫", "被叫"),
    "duration_s": ("Duration (s)", "时长(秒)", "時長(秒)"),
    "disposition": ("Disposition", "结果", "結果"),
    "recording": ("Recording", "录音", "錄音"),
    "attempt_no": ("Attempt no.", "拨打次数", "撥打次數"),
    "dimension": ("Attribute", "属性", "屬性"),
    "value": ("Value", "取值", "取值"),
    "contact_rate": ("Contact rate", "接触率", "接觸率"),
    "valid_rate": ("Valid-call rate", "有效率", "有效率"),
    "conversion_rate": ("Conversion rate", "成功率", "成功率"),
    "region": ("Region", "地区", "地區"),
    "carrier": ("Carrier", "运营商", "運營商"),
    "line_type": ("Line type", "号码类型", "號碼類型"),
    "virtual_operator": ("Virtual operator", "虚拟运营商", "虛擬運營商"),
    "time_of_day": ("Time of day", "时段", "時段"),
    "kpi": ("KPI", "指标", "指標"),
    "actual": ("Actual", "实际", "實際"),
    "status": ("Status", "状态", "狀態"),
    "kpi_valid_per_hour": (
        "Valid calls per agent-hour",
        "每坐席小时有效通话",
        "每坐席小時有效通話",
    ),
    "kpi_valid_calls": ("Valid calls vs monthly target", "有效通话对比指标", "有效通話對比指標"),
    "kpi_abandon_rate": ("Abandon rate", "放弃率", "放棄率"),
    "kpi_valid_total": ("Valid calls", "有效通话总量", "有效通話總量"),
    "ok": ("met", "达标", "達標"),
    "not_ok": ("missed", "未达标", "未達標"),
    "client": ("Client", "客户", "客戶"),
    "period": ("Period", "期间", "期間"),
    "timezone": ("Time zone", "时区", "時區"),
    "generated": ("Generated", "生成时间", "生成時間"),
    "campaign": ("Campaign", "项目", "項目"),
    "no_rows": ("No calls in this period.", "本期间无通话。", "本期間無通話。"),
    "totals": ("Total", "合计", "合計"),
    "definitions": (
        "Valid call: a call connected to an agent with talk over {valid_s} s. Abandon rate: "
        "abandoned ÷ live-answered. Times in {tz}.",
        "有效通话：接通坐席且通话超过 {valid_s} 秒。放弃率 = 放弃量 ÷ 人工接听量。时间为 {tz}。",
        "有效通話：接通坐席且通話超過 {valid_s} 秒。放棄率 = 放棄量 ÷ 人工接聽量。時間為 {tz}。",
    ),
    # statements
    "line_item": ("Item", "项目", "項目"),
    "quantity": ("Quantity", "数量", "數量"),
    "unit_price": ("Unit price (CNY)", "单价(元)", "單價(元)"),
    "amount": ("Amount (CNY)", "金额(元)", "金額(元)"),
    "subtotal": ("Subtotal", "小计", "小計"),
    "deduction": ("Availability deduction", "系统稳定性扣减", "系統穩定性扣減"),
    "net": ("Net (excl. VAT)", "不含税金额", "不含稅金額"),
    "vat": ("VAT", "增值税", "增值稅"),
    "total": ("Total (incl. VAT)", "含税合计", "含稅合計"),
    "version": ("Version", "版本", "版本"),
    "issue_by": ("Issue by", "出具期限", "出具期限"),
    "confirm_by": (
        "Confirm by (else deemed confirmed)",
        "确认期限(逾期视为确认)",
        "確認期限(逾期視為確認)",
    ),
    "due_on": ("Payment due", "付款期限", "付款期限"),
    "late_interest": ("Late-payment interest per day", "逾期违约金(每日)", "逾期違約金(每日)"),
    "availability": ("Platform availability", "系统稳定性", "系統穩定性"),
    "valid_calls_line": ("Valid calls (> 15 s)", "15秒以上通话量", "15秒以上通話量"),
    "holiday_line": (
        "Valid calls on statutory holidays (3×)",
        "法定节假日通话量(3倍)",
        "法定節假日通話量(3倍)",
    ),
    "inbound": ("Inbound seat", "纯呼入坐席", "純呼入坐席"),
    "inbound_outbound": ("Inbound and outbound seat", "呼入呼出双向坐席", "呼入呼出雙向坐席"),
}


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise ReportInputError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    return language


def t(key: str, language: str, **values: object) -> str:
    """The text for ``key`` in ``language`` (the key itself if there is none)."""
    entry = _TEXT.get(key)
    if entry is None:
        return key
    text = entry[_INDEX.get(language, 0)]
    return text.format(**values) if values else text
