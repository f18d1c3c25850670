{#- Resample the base bars of raw_ohlc into `timeframe` buckets, exactly:
    open = first bar's open, high = max, low = min, close = last bar's close, volume = sum,
    buckets aligned to UTC (multiples of the bucket length since the epoch).

    Flags instead of silent mixing:
      bar_count / expected_bars   how many base bars the bucket holds / should hold
      is_complete                 bar_count = expected_bars (a bucket with a hole is false)
      is_closed                   false for a symbol's still-open newest bucket: the bucket
                                  ends after the close of that symbol's newest base bar

    Incremental runs (dbt incremental, delete+insert on the bar key) recompute, per
    (exchange, symbol) that has bars written since the newest load this model has seen
    (raw_ohlc.loaded_at, minus var incremental_grace_minutes), every bucket from the earlier of
    (a) the bucket of its first such bar and (b) its newest stored bucket, the lookback that
    closes or completes the bucket that was still open. Symbols without new bars are untouched.
    Bars deleted from raw_ohlc are only forgotten by `--full-refresh`. -#}
{% macro resample(timeframe) %}
{%- set raw = source("warehouse", "raw_ohlc") -%}
{%- set base_timeframe = var("base_timeframe") -%}
{%- set bucket_seconds = timeframe_seconds(timeframe) -%}
{%- set base_seconds = timeframe_seconds(base_timeframe) -%}
{%- set expected_bars = bucket_seconds // base_seconds -%}
{#- Each CTE reads raw_ohlc itself rather than through a shared CTE: PostgreSQL materializes a
    CTE used twice, which would copy all of raw_ohlc on every run. -#}
with
{%- if is_incremental() %}
seen as (
    select coalesce(max(source_loaded_at), {{ utc_epoch() }})
        - interval '{{ var("incremental_grace_minutes") }} minutes' as loaded_after
    from {{ this }}
),
changed as (
    select exchange, symbol, min(ts) as first_changed_ts
    from {{ raw }}
    where timeframe = '{{ base_timeframe }}' and loaded_at > (select loaded_after from seen)
    group by exchange, symbol
),
stored as (
    select exchange, symbol, max(ts) as newest_bucket
    from {{ this }}
    group by exchange, symbol
),
scope as (
    select
        c.exchange,
        c.symbol,
        case
            when s.newest_bucket is null
                or s.newest_bucket > {{ bucket_start("c.first_changed_ts", bucket_seconds) }}
            then {{ bucket_start("c.first_changed_ts", bucket_seconds) }}
            else s.newest_bucket
        end as from_ts
    from changed as c
    left join stored as s on s.exchange = c.exchange and s.symbol = c.symbol
),
bars as (
    -- per symbol a range of the primary key (exchange, symbol, timeframe, ts): an index range
    -- scan on PostgreSQL, not a pass over the whole table
    select r.exchange, r.symbol, r.ts, r.open, r.high, r.low, r.close, r.volume, r.loaded_at
    from scope as s
    cross join lateral (
        select exchange, symbol, ts, open, high, low, close, volume, loaded_at
        from {{ raw }}
        where exchange = s.exchange
            and symbol = s.symbol
            and timeframe = '{{ base_timeframe }}'
            and ts >= s.from_ts
            {{ lateral_fence() }}
    ) as r
),
newest as (
    select exchange, symbol, max(ts) as newest_ts
    from bars
    group by exchange, symbol
),
{%- else %}
bars as (
    select exchange, symbol, ts, open, high, low, close, volume, loaded_at
    from {{ raw }}
    where timeframe = '{{ base_timeframe }}'
),
newest as (
    select exchange, symbol, max(ts) as newest_ts
    from {{ raw }}
    where timeframe = '{{ base_timeframe }}'
    group by exchange, symbol
),
{%- endif %}
bucketed as (
    select
        exchange, symbol, ts, open, high, low, close, volume, loaded_at,
        {{ bucket_start("ts", bucket_seconds) }} as bucket_ts
    from bars
)
select
    b.exchange,
    b.symbol,
    cast('{{ timeframe }}' as varchar) as timeframe,
    b.bucket_ts as ts,
    {{ first_by("b.open", "b.ts") }} as open,
    max(b.high) as high,
    min(b.low) as low,
    {{ last_by("b.close", "b.ts") }} as close,
    sum(b.volume) as volume,
    count(*) as bar_count,
    {{ expected_bars }} as expected_bars,
    count(*) = {{ expected_bars }} as is_complete,
    b.bucket_ts + interval '{{ bucket_seconds }} seconds'
        <= n.newest_ts + interval '{{ base_seconds }} seconds' as is_closed,
    max(b.loaded_at) as source_loaded_at
from bucketed as b
join newest as n on n.exchange = b.exchange and n.symbol = b.symbol
group by b.exchange, b.symbol, b.bucket_ts, n.newest_ts
{% endmacro %}
