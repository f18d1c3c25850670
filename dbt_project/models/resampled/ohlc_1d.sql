{{ config(enabled=is_coarser_than_base("1d"), indexes=bar_key_indexes()) }}
{{ resample("1d") }}
