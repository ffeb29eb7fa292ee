"""The timeline page's words in English and Japanese, and holiday names in the page's language.

Every label the page prints comes from ``words(lang)``; dates are formatted here too. What the
engine says about a segment (a window's reason, an override's reason) and a company calendar's
name are the documents' words and stay as written. National holidays are named again in the
page's language where the ``holidays`` library has that language (Japan: 元日, 成人の日, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Literal

from schemas.countries import holiday_class
from schemas.countries import is_country as _is_country

Lang = Literal["en", "ja"]
LANGS: tuple[Lang, ...] = ("en", "ja")

_EN: dict[str, str] = {
    "title": "Schedule simulation",
    "kpi_saved": "Saved with teiji",
    "kpi_saved_note": "{pct} of the bill",
    "kpi_without": "Cost without teiji",
    "kpi_without_note": "running all the time",
    "kpi_with": "Cost with teiji",
    "kpi_with_note": "as scheduled",
    "kpi_off": "Time off",
    "kpi_off_note": "{stopped} of {total} stopped",
    "kpi_services": "Services",
    "kpi_services_note": "simulated",
    "cmp_aria": "cost with and without teiji",
    "cmp_without": "Without teiji",
    "cmp_with": "With teiji",
    "months": "Monthly projection",
    "months_rule": "Each calendar month is scaled from the days simulated in it (days in the "
    "month ÷ days simulated); a month simulated whole is exact.",
    "m_month": "Month",
    "m_from": "Projected from",
    "m_from_days": "{n} of {m} days",
    "m_task_hours": "Stopped task-hours",
    "m_saved_sim": "Saved, simulated days",
    "m_without": "Cost without teiji",
    "m_saved": "Saved in the month",
    "overview": "Overview",
    "filter_label": "Filter",
    "filter_placeholder": "service name contains…",
    "sort": "Sort by",
    "sort_saved": "savings",
    "sort_name": "name",
    "no_match": "No service matches the filter.",
    "o_service": "Service",
    "o_days": "Days",
    "o_running": "Running",
    "o_stopped": "Stopped",
    "o_off": "Off",
    "o_without": "Cost without",
    "o_with": "Cost with",
    "o_saved": "Saved",
    "o_saved_pct": "Saved %",
    "total": "Total",
    "legend_aria": "legend",
    "lg_run": "Running",
    "lg_stop": "Stopped",
    "lg_red": "Reduced, not zero (stopped count above 0)",
    "lg_hol": "Holiday (stopped)",
    "lg_ovr-run": "Override: kept running",
    "lg_ovr-stop": "Override: kept stopped",
    "lg_unm": "Unmanaged (left alone)",
    "lg_gap": "Hour skipped by DST",
    "details": "Timelines",
    "details_hint": "One per service; open a service to see its days.",
    "tasks": "{n} task × {size}",
    "tasks_many": "{n} tasks × {size}",
    "while_stopped": "{n} while stopped",
    "profile_doc": "profile {name} by its document (set itself: {own})",
    "profile_tag": "profile {name} by its teiji:profile tag",
    "profile_fields": "from the profile: {fields}",
    "nothing": "nothing",
    "st_running": "running",
    "st_stopped": "stopped",
    "st_off": "off",
    "st_saved": "saved ({pct})",
    "dst_day": "{h} h day (DST)",
    "hours": "{h} h",
    "running": "running",
    "stopped": "stopped",
    "reduced": "reduced to {n}",
    "unmanaged": "unmanaged",
    "gap": "this local time does not exist (DST starts)",
    "out": "outside the simulated range",
    "twice": " (this hour happens twice today, DST ends; the first is shown)",
    "override": "override",
    "day_share": "{day}: {parts}",
    "foot_local": "Times are local to each service's zone; changes take effect at the next "
    "15-minute tick.",
    "foot_prices": "Prices: {note}.",
    "foot_cost": "Cost counts Fargate vCPU and memory only.",
    "foot_generated": "Generated {at} by teiji simulate.",
}

_JA: dict[str, str] = {
    "title": "スケジュールのシミュレーション",
    "kpi_saved": "teiji による節約",
    "kpi_saved_note": "請求額の {pct}",
    "kpi_without": "teiji なしの費用",
    "kpi_without_note": "常に稼働した場合",
    "kpi_with": "teiji ありの費用",
    "kpi_with_note": "スケジュールどおり",
    "kpi_off": "停止時間",
    "kpi_off_note": "{total} のうち {stopped} 停止",
    "kpi_services": "サービス",
    "kpi_services_note": "件をシミュレーション",
    "cmp_aria": "teiji ありとなしの費用",
    "cmp_without": "teiji なし",
    "cmp_with": "teiji あり",
    "months": "月別の見込み",
    "months_rule": "各月は、その月のうちシミュレーションした日の値を月の日数に比例して換算"
    "します（月の日数 ÷ シミュレーション日数）。丸ごとシミュレーションした月は換算なしです。",
    "m_month": "月",
    "m_from": "推計の元",
    "m_from_days": "{m} 日中 {n} 日",
    "m_task_hours": "停止タスク時間",
    "m_saved_sim": "節約額（シミュレーション日）",
    "m_without": "teiji なしの費用",
    "m_saved": "月の節約見込み",
    "overview": "一覧",
    "filter_label": "絞り込み",
    "filter_placeholder": "サービス名に含む文字…",
    "sort": "並べ替え",
    "sort_saved": "節約額",
    "sort_name": "名前",
    "no_match": "条件に合うサービスはありません。",
    "o_service": "サービス",
    "o_days": "日ごと",
    "o_running": "稼働",
    "o_stopped": "停止",
    "o_off": "停止率",
    "o_without": "teiji なし",
    "o_with": "teiji あり",
    "o_saved": "節約額",
    "o_saved_pct": "節約率",
    "total": "合計",
    "legend_aria": "凡例",
    "lg_run": "稼働",
    "lg_stop": "停止",
    "lg_red": "縮小（停止中のタスク数が 0 より多い）",
    "lg_hol": "祝日（停止）",
    "lg_ovr-run": "オーバーライド: 稼働を維持",
    "lg_ovr-stop": "オーバーライド: 停止を維持",
    "lg_unm": "管理対象外（そのまま）",
    "lg_gap": "夏時間で存在しない時間",
    "details": "タイムライン",
    "details_hint": "サービスごと。開くと日ごとの動きが見えます。",
    "tasks": "タスク {n} 個 × {size}",
    "tasks_many": "タスク {n} 個 × {size}",
    "while_stopped": "停止中 {n} 個",
    "profile_doc": "プロファイル {name}（文書で指定、自身の設定: {own}）",
    "profile_tag": "プロファイル {name}（teiji:profile タグで指定）",
    "profile_fields": "プロファイルから: {fields}",
    "nothing": "なし",
    "st_running": "稼働",
    "st_stopped": "停止",
    "st_off": "停止率",
    "st_saved": "節約（{pct}）",
    "dst_day": "{h} 時間の日（夏時間）",
    "hours": "{h} 時間",
    "running": "稼働",
    "stopped": "停止",
    "reduced": "{n} 個に縮小",
    "unmanaged": "管理対象外",
    "gap": "この現地時刻は存在しません（夏時間の開始）",
    "out": "シミュレーション範囲外",
    "twice": "（夏時間の終了でこの時間は 2 回あります。1 回目を表示）",
    "override": "オーバーライド",
    "day_share": "{day}: {parts}",
    "foot_local": "時刻は各サービスのタイムゾーンの現地時刻です。変更は次の 15 分ごとの"
    "ティックで反映されます。",
    "foot_prices": "料金: {note}。",
    "foot_cost": "費用は Fargate の vCPU とメモリのみです。",
    "foot_generated": "{at} に teiji simulate が作成。",
}

_WORDS: Mapping[Lang, Mapping[str, str]] = {"en": _EN, "ja": _JA}
_WEEKDAYS: Mapping[Lang, tuple[str, ...]] = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "ja": ("月", "火", "水", "木", "金", "土", "日"),
}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def words(lang: Lang) -> Mapping[str, str]:
    """The page's labels in ``lang``."""
    return _WORDS[lang]


def weekday(day: date, lang: Lang) -> str:
    return _WEEKDAYS[lang][day.weekday()]


def day_month(day: date, lang: Lang) -> str:
    """``16 Nov`` or ``11月16日``."""
    return f"{day.month}月{day.day}日" if lang == "ja" else f"{day.day} {_MONTHS[day.month - 1]}"


def month_name(month: date, lang: Lang) -> str:
    """``Nov 2026`` or ``2026年11月``."""
    return f"{month.year}年{month.month}月" if lang == "ja" else f"{month:%b %Y}"


def full_date(day: date, lang: Lang) -> str:
    """``Mon 16 Nov 2026`` or ``2026年11月16日(月)``."""
    if lang == "ja":
        return f"{day.year}年{day.month}月{day.day}日({weekday(day, lang)})"
    return f"{weekday(day, lang)} {day_month(day, lang)} {day.year}"


def localized_holidays(
    holidays: Mapping[date, str], calendars: Sequence[str], lang: Lang
) -> Mapping[date, str]:
    """``holidays`` (date -> label from ``engine.calendars``) named in ``lang``.

    The label's calendar is found again in the schedule's order: a company calendar's label
    (``company calendar 'name'``) stays as it is; a country's holiday is named in ``lang``
    when the library has that language for the country, else the English label stays.
    """
    if lang == "en" or not holidays or not calendars:
        return holidays
    named: dict[date, str] = {}
    for day, label in holidays.items():
        named[day] = _named(day, label, calendars, lang)
    return named


def _named(day: date, label: str, calendars: Sequence[str], lang: Lang) -> str:
    for name in calendars:
        if label == f"company calendar '{name}'":
            return label
        if not _is_country(name):
            continue
        if label.endswith(f" ({name})"):
            local = _country_holidays(name, day.year, lang).get(day)
            return f"{local}（{name}）" if local else label
    return label


_CACHE: dict[tuple[str, int, str], Mapping[date, str]] = {}


def _country_holidays(name: str, year: int, lang: Lang) -> Mapping[date, str]:
    key = (name, year, lang)
    found = _CACHE.get(key)
    if found is None:
        country, _, subdivision = name.partition("-")
        entity = holiday_class(country)
        if lang not in entity.supported_languages:
            found = {}
        else:
            made = entity(subdiv=subdivision or None, years=year, language=lang)
            found = {d: str(n) for d, n in made.items()}
        _CACHE[key] = found
    return found
