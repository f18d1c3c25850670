{#- The base bars of the last `hours` of each (exchange, symbol), relative to that symbol's
    newest bar rather than the wall clock, so a backfilled history still has a "today":
    bars with  ts > newest_ts - hours, i.e. exactly `hours` of trading that end at the close
    of the newest bar (96 bars of 15m for 24 h). `as_of` is the newest bar's open time. -#}
{% macro recent_window(hours) %}
{%- set raw = source("warehouse", "raw_ohlc") -%}
{%- set base_timeframe = var("base_timeframe") -%}
with newest as (
    select exchange, symbol, max(ts) as newest_ts
    from {{ raw }}
    where timeframe = '{{ base_timeframe }}'
    group by exchange, symbol
)
select
    r.exchange,
    r.symbol,
    r.timeframe,
    r.ts,
    r.open,
    r.high,
    r.low,
    r.close,
    r.volume,
    n.newest_ts as as_of
from newest as n
-- per symbol a range of the primary key (exchange, symbol, timeframe, ts)
cross join lateral (
    select exchange, symbol, timeframe, ts, open, high, low, close, volume
    from {{ raw }}
    where exchange = n.exchange
        and symbol = n.symbol
        and timeframe = '{{ base_timeframe }}'
        and ts > n.newest_ts - interval '{{ hours }} hours'
        {{ lateral_fence() }}
) as r
order by r.exchange, r.symbol, r.ts
{% endmacro %}

{#- PostgreSQL: the index "last N hours of one symbol" needs. DuckDB scans the few thousand
    rows faster than it would use an index. -#}
{% macro window_indexes() -%}
    {%- if target.type == "postgres" -%}
        {{- return([{"columns": ["symbol", "ts"]}]) -}}
    {%- else -%}
        {{- return([]) -}}
    {%- endif -%}
{%- endmacro %}

{#- PostgreSQL: a unique index on the bar key of a resampled model (enforces the key, and
    serves the delete of delete+insert). Not on DuckDB, whose indexes reject a key deleted and
    re-inserted in one transaction. -#}
{% macro bar_key_indexes() -%}
    {%- if target.type == "postgres" -%}
        {{- return([{"columns": ["exchange", "symbol", "timeframe", "ts"], "unique": true}]) -}}
    {%- else -%}
        {{- return([]) -}}
    {%- endif -%}
{%- endmacro %}
