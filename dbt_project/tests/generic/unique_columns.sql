{#- No two rows share the values of `columns` (the bar key). -#}
{% test unique_columns(model, columns) %}
select {{ columns | join(", ") }}, count(*) as rows_with_key
from {{ model }}
group by {{ columns | join(", ") }}
having count(*) > 1
{% endtest %}
