// Centralita's build of Apache ECharts: only what the pages draw.
import * as echarts from 'echarts/core';
import { BarChart, LineChart, SankeyChart } from 'echarts/charts';
import {
  GridComponent, TooltipComponent, TitleComponent, LegendComponent, MarkLineComponent, AriaComponent
} from 'echarts/components';
import { SVGRenderer } from 'echarts/renderers';

echarts.use([
  BarChart, LineChart, SankeyChart,
  GridComponent, TooltipComponent, TitleComponent, LegendComponent, MarkLineComponent, AriaComponent,
  SVGRenderer,
]);
window.echarts = echarts;
